//! Business hours: when a queue is open or an SLA clock runs, in the
//! center's time zone, with holidays and special (make-up) working days.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Opening hours: of a queue (outside them, its `closed` overflow rule
/// applies) or of an SLA policy's clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// IANA time zone, e.g. Asia/Shanghai; the center's (`routing.time_zone`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Weekly opening hours.
    #[schema(max_items = 50)]
    pub weekly: Vec<OpeningHours>,
    /// Days closed all day (holidays), YYYY-MM-DD.
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub closed_on: Vec<NaiveDate>,
    /// Days open on other hours than their weekday's (make-up working days).
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub special: Vec<SpecialDay>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpeningHours {
    /// mon, tue, wed, thu, fri, sat, sun.
    #[schema(min_items = 1)]
    pub days: Vec<Day>,
    /// HH:MM, local time.
    #[schema(value_type = String, example = "08:00", pattern = r"^([01]?[0-9]|2[0-3]):[0-5]?[0-9](:([0-5]?[0-9]|60)(\.[0-9]{1,9})?)?$")]
    pub from: NaiveTime,
    /// HH:MM, local time; 24:00 is written 23:59.
    #[schema(value_type = String, example = "20:00", pattern = r"^([01]?[0-9]|2[0-3]):[0-5]?[0-9](:([0-5]?[0-9]|60)(\.[0-9]{1,9})?)?$")]
    pub to: NaiveTime,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpecialDay {
    pub date: NaiveDate,
    /// HH:MM, local time.
    #[schema(value_type = String, pattern = r"^([01]?[0-9]|2[0-3]):[0-5]?[0-9](:([0-5]?[0-9]|60)(\.[0-9]{1,9})?)?$")]
    pub from: NaiveTime,
    #[schema(value_type = String, pattern = r"^([01]?[0-9]|2[0-3]):[0-5]?[0-9](:([0-5]?[0-9]|60)(\.[0-9]{1,9})?)?$")]
    pub to: NaiveTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    fn weekday(self) -> Weekday {
        match self {
            Self::Mon => Weekday::Mon,
            Self::Tue => Weekday::Tue,
            Self::Wed => Weekday::Wed,
            Self::Thu => Weekday::Thu,
            Self::Fri => Weekday::Fri,
            Self::Sat => Weekday::Sat,
            Self::Sun => Weekday::Sun,
        }
    }
}

/// Parses an IANA time zone name.
pub fn time_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("{name:?} is not an IANA time zone such as Asia/Shanghai"))
}

impl BusinessHours {
    /// Problems with these hours, each naming the field.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if let Some(zone) = &self.time_zone
            && let Err(message) = time_zone(zone)
        {
            problems.push(("/time_zone".to_owned(), message));
        }
        for (index, hours) in self.weekly.iter().enumerate() {
            if hours.from >= hours.to {
                problems.push((
                    format!("/weekly/{index}"),
                    "from must be before to".to_owned(),
                ));
            }
            if hours.days.is_empty() {
                problems.push((
                    format!("/weekly/{index}/days"),
                    "name at least one day".to_owned(),
                ));
            }
        }
        for (index, day) in self.special.iter().enumerate() {
            if day.from >= day.to {
                problems.push((
                    format!("/special/{index}"),
                    "from must be before to".to_owned(),
                ));
            }
        }
        if self.weekly.len() > 50 || self.closed_on.len() > 1000 || self.special.len() > 1000 {
            problems.push((String::new(), "too many entries".to_owned()));
        }
        problems
    }

    fn zone(&self, center: Tz) -> Tz {
        self.time_zone
            .as_deref()
            .and_then(|name| time_zone(name).ok())
            .unwrap_or(center)
    }

    /// The local opening hours of `date`: its special hours, none on a
    /// holiday, else its weekday's.
    fn hours_on(&self, date: NaiveDate) -> Vec<(NaiveTime, NaiveTime)> {
        if let Some(special) = self.special.iter().find(|day| day.date == date) {
            return vec![(special.from, special.to)];
        }
        if self.closed_on.contains(&date) {
            return Vec::new();
        }
        let mut hours: Vec<(NaiveTime, NaiveTime)> = self
            .weekly
            .iter()
            .filter(|hours| hours.days.iter().any(|day| day.weekday() == date.weekday()))
            .map(|hours| (hours.from, hours.to))
            .collect();
        hours.sort();
        // Overlapping entries count once.
        let mut merged: Vec<(NaiveTime, NaiveTime)> = Vec::new();
        for (from, to) in hours {
            match merged.last_mut() {
                Some(last) if from <= last.1 => last.1 = last.1.max(to),
                _ => merged.push((from, to)),
            }
        }
        merged
    }

    /// The open intervals of the local days from `first` on, as instants, up
    /// to ten years ahead (a calendar open less often has no deadline).
    fn open_intervals(
        &self,
        first: NaiveDate,
        center: Tz,
    ) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        let zone = self.zone(center);
        first.iter_days().take(3660).flat_map(move |date| {
            self.hours_on(date)
                .into_iter()
                .filter_map(move |(from, to)| {
                    Some((instant(zone, date, from)?, instant(zone, date, to)?))
                })
        })
    }

    /// The instant `duration` of open time after `start` (at `start` itself
    /// when it is zero and the hours are open): an SLA deadline in business
    /// time. `None` when the hours never open in the next ten years.
    pub fn add_business(
        &self,
        start: DateTime<Utc>,
        duration: Duration,
        center: Tz,
    ) -> Option<DateTime<Utc>> {
        let mut remaining = duration;
        let first = start.with_timezone(&self.zone(center)).date_naive();
        for (open, close) in self.open_intervals(first, center) {
            if close <= start {
                continue;
            }
            let from = open.max(start);
            let available = close - from;
            if remaining <= available {
                return Some(from + remaining);
            }
            remaining -= available;
        }
        None
    }

    /// How much open time lies between `from` and `to`.
    pub fn business_between(&self, from: DateTime<Utc>, to: DateTime<Utc>, center: Tz) -> Duration {
        if to <= from {
            return Duration::zero();
        }
        let first = from.with_timezone(&self.zone(center)).date_naive();
        let mut total = Duration::zero();
        for (open, close) in self.open_intervals(first, center) {
            if open >= to {
                break;
            }
            let (start, end) = (open.max(from), close.min(to));
            if end > start {
                total += end - start;
            }
        }
        total
    }

    /// Whether the hours are open at `now`; `center` is the center's time zone.
    pub fn is_open(&self, now: DateTime<Utc>, center: Tz) -> bool {
        let zone = self.zone(center);
        let local = now.with_timezone(&zone);
        let (date, time) = (local.date_naive(), local.time());
        if let Some(special) = self.special.iter().find(|day| day.date == date) {
            return special.from <= time && time < special.to;
        }
        if self.closed_on.contains(&date) {
            return false;
        }
        self.weekly.iter().any(|hours| {
            hours.days.iter().any(|day| day.weekday() == date.weekday())
                && hours.from <= time
                && time < hours.to
        })
    }
}

/// A local time as an instant: the earlier one when DST repeats it, the
/// first valid one after it when DST skips it.
fn instant(zone: Tz, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let local = date.and_time(time);
    (0..=4)
        .find_map(|hours| {
            zone.from_local_datetime(&(local + Duration::minutes(30 * hours)))
                .earliest()
        })
        .map(|at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours() -> BusinessHours {
        serde_json::from_value(serde_json::json!({
            "time_zone": "Asia/Shanghai",
            "weekly": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "20:00"}],
            "closed_on": ["2026-10-01"],
            "special": [{"date": "2026-10-10", "from": "09:00", "to": "12:00"}],
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn open_on_weekdays_in_the_queues_own_zone() {
        let hours = hours();
        // Tuesday 2026-12-01 09:00 in Shanghai is 01:00 UTC.
        assert!(hours.is_open(at("2026-12-01T01:00:00Z"), Tz::UTC));
        assert!(!hours.is_open(at("2026-12-01T12:30:00Z"), Tz::UTC));
        // Saturday.
        assert!(!hours.is_open(at("2026-12-05T03:00:00Z"), Tz::UTC));
        // A holiday on a Thursday, then a special Saturday.
        assert!(!hours.is_open(at("2026-10-01T03:00:00Z"), Tz::UTC));
        assert!(hours.is_open(at("2026-10-10T02:00:00Z"), Tz::UTC));
        assert!(!hours.is_open(at("2026-10-10T05:00:00Z"), Tz::UTC));
        assert!(hours.problems().is_empty());
    }

    #[test]
    fn business_time_skips_nights_weekends_and_holidays() {
        let hours = hours();
        // Friday 2026-12-04 19:00 Shanghai (11:00 UTC) + 3 h: 1 h on Friday,
        // then Monday 08:00 + 2 h = Monday 10:00 Shanghai (02:00 UTC).
        let friday = at("2026-12-04T11:00:00Z");
        assert_eq!(
            hours.add_business(friday, Duration::hours(3), Tz::UTC),
            Some(at("2026-12-07T02:00:00Z"))
        );
        assert_eq!(
            hours.business_between(friday, at("2026-12-07T02:00:00Z"), Tz::UTC),
            Duration::hours(3)
        );
        // Before opening, the clock starts at 08:00.
        assert_eq!(
            hours.add_business(at("2026-12-01T22:00:00Z"), Duration::minutes(30), Tz::UTC),
            Some(at("2026-12-02T00:30:00Z"))
        );
        // The holiday (Thursday 10-01) is skipped; the special Saturday 10-10
        // counts its three hours.
        assert_eq!(
            hours.add_business(at("2026-09-30T11:00:00Z"), Duration::hours(2), Tz::UTC),
            Some(at("2026-10-02T01:00:00Z"))
        );
        assert_eq!(
            hours.business_between(
                at("2026-10-10T00:00:00Z"),
                at("2026-10-11T00:00:00Z"),
                Tz::UTC
            ),
            Duration::hours(3)
        );
        assert_eq!(
            hours.business_between(friday, friday, Tz::UTC),
            Duration::zero()
        );
    }

    #[test]
    fn round_the_clock_hours_are_plain_time_and_dst_is_walked_in_local_days() {
        let always: BusinessHours = serde_json::from_value(serde_json::json!({
            "time_zone": "Europe/Berlin",
            "weekly": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "from": "09:00", "to": "17:00"}],
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        // Saturday 2026-10-24 16:00 CEST (14:00 UTC) + 2 h: 1 h Saturday, then
        // Sunday 09:00 CET, after the clocks went back, is 08:00 UTC.
        assert_eq!(
            always.add_business(at("2026-10-24T14:00:00Z"), Duration::hours(2), Tz::UTC),
            Some(at("2026-10-25T09:00:00Z"))
        );
        let never: BusinessHours = serde_json::from_value(serde_json::json!({"weekly": []}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            never.add_business(at("2026-10-24T14:00:00Z"), Duration::hours(1), Tz::UTC),
            None
        );
    }
}
