//! Work-order numbers: `WO-<day>-<count>`, e.g. `WO-20261123-000123` — the
//! creation day in the center's time zone, then that day's count.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// The counter's key for the day `at` falls on in `zone`: `20261123`.
pub fn day(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%Y%m%d").to_string()
}

/// The number of the `count`th order of `day` (six digits, more past 999,999).
pub fn format(day: &str, count: i64) -> String {
    format!("WO-{day}-{count:06}")
}

/// The canonical form of a number as people type it: with or without `WO-`
/// and hyphens, in any case (`wo20261123000123`, `20261123-000123`).
pub fn normalize(input: &str) -> Option<String> {
    let compact: String = input
        .trim()
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\u{3000}'))
        .collect::<String>()
        .to_ascii_uppercase();
    let digits = compact.strip_prefix("WO").unwrap_or(&compact);
    if digits.len() < 14 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (day, count) = digits.split_at(8);
    let count: i64 = count.parse().ok()?;
    Some(format(day, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_is_the_centers_and_the_count_has_six_digits() {
        let late_utc: DateTime<Utc> = "2026-11-22T17:30:00Z".parse().unwrap();
        assert_eq!(day(late_utc, chrono_tz::Asia::Shanghai), "20261123");
        assert_eq!(format("20261123", 123), "WO-20261123-000123");
        assert_eq!(format("20261123", 1_234_567), "WO-20261123-1234567");
    }

    #[test]
    fn numbers_are_recognised_however_they_are_typed() {
        for typed in [
            "WO-20261123-000123",
            "wo-20261123-000123",
            "WO20261123000123",
            "20261123-000123",
            " 20261123 000123 ",
        ] {
            assert_eq!(
                normalize(typed).as_deref(),
                Some("WO-20261123-000123"),
                "{typed}"
            );
        }
        for garbage in ["", "WO-2026", "WO-20261123-00012X", "ticket 5"] {
            assert_eq!(normalize(garbage), None, "{garbage}");
        }
    }
}
