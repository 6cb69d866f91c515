//! The 18-character PRC resident identity number (GB 11643-1999), checked
//! before it is stored so that typos are caught while the caller is still on
//! the line.

use std::fmt;

use chrono::{Datelike, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// Characters in a second-generation resident identity number.
const LEN: usize = 18;

/// ISO 7064 MOD 11-2 weights for the first 17 digits.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// Check character for each remainder of the weighted sum modulo 11.
const CHECK_CHARS: [u8; 11] = *b"10X98765432";

/// Earliest birth year accepted; older dates are typing mistakes.
const MIN_BIRTH_YEAR: i32 = 1900;

/// China Standard Time has no daylight saving, so a fixed offset is exact.
const CHINA_UTC_OFFSET_HOURS: i64 = 8;

/// Why a resident identity number was rejected. Messages never contain the
/// number or the birth date, because both are personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResidentIdError {
    #[error("resident id must be 18 characters, got {0}")]
    WrongLength(usize),
    #[error(
        "resident id must be 17 digits followed by a digit or X (bad character at position {0})"
    )]
    NonDigit(usize),
    #[error("resident id region code {0:02} is not a valid province code")]
    BadRegion(u8),
    #[error("resident id birth date is not a valid calendar date")]
    InvalidBirthDate,
    #[error("resident id birth date is in the future")]
    BirthDateInFuture,
    #[error("resident id birth date is before {MIN_BIRTH_YEAR}")]
    BirthDateTooEarly,
    #[error("resident id check digit should be {0}")]
    BadCheckDigit(char),
}

/// A validated resident identity number, with a lowercase `x` check
/// character normalised to `X`.
///
/// It has no `Display`, and `Debug` shows the masked form, so that the full
/// number only leaves through an explicit `as_str`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResidentId {
    value: String,
    birth_date: NaiveDate,
}

impl ResidentId {
    /// Validates against today's date in China.
    pub fn parse(input: &str) -> Result<ResidentId, ResidentIdError> {
        let today = (Utc::now() + TimeDelta::hours(CHINA_UTC_OFFSET_HOURS)).date_naive();
        Self::parse_on(input, today)
    }

    /// Validates with an explicit "today", so the future-date rule is testable.
    pub fn parse_on(input: &str, today: NaiveDate) -> Result<ResidentId, ResidentIdError> {
        let input = input.trim();
        let len = input.chars().count();
        if len != LEN {
            return Err(ResidentIdError::WrongLength(len));
        }

        // Length in chars is 18; any non-ASCII char is a bad character, and
        // finding it by char position keeps the reported position right.
        let value = input.to_ascii_uppercase();
        if let Some(pos) = value
            .chars()
            .enumerate()
            .position(|(i, c)| !(c.is_ascii_digit() || (i == LEN - 1 && c == 'X')))
        {
            return Err(ResidentIdError::NonDigit(pos + 1));
        }
        let bytes = value.as_bytes();
        let digit = |i: usize| u32::from(bytes[i] - b'0');

        let province = digit(0) * 10 + digit(1);
        if !is_province_code(province) {
            return Err(ResidentIdError::BadRegion(province as u8));
        }

        let number = |range: std::ops::Range<usize>| range.fold(0u32, |acc, i| acc * 10 + digit(i));
        let year = number(6..10) as i32;
        let birth_date = NaiveDate::from_ymd_opt(year, number(10..12), number(12..14))
            .ok_or(ResidentIdError::InvalidBirthDate)?;
        if birth_date.year() < MIN_BIRTH_YEAR {
            return Err(ResidentIdError::BirthDateTooEarly);
        }
        if birth_date > today {
            return Err(ResidentIdError::BirthDateInFuture);
        }

        let expected = check_char(bytes);
        if bytes[LEN - 1] != expected {
            return Err(ResidentIdError::BadCheckDigit(char::from(expected)));
        }

        Ok(ResidentId { value, birth_date })
    }

    /// The full 18-character number.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// For logs and screens: the first four and last four characters,
    /// e.g. `1101**********002X`.
    pub fn masked(&self) -> String {
        hotline_kit::mask::keep_ends(&self.value, 4, 4)
    }

    /// The birth date encoded in positions 7–14.
    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date
    }
}

/// ISO 7064 MOD 11-2 check character over the first 17 ASCII digits.
fn check_char(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK_CHARS[(sum % 11) as usize]
}

/// Province-level codes (first two digits of a GB/T 2260 division code):
/// the mainland provinces, 71 Taiwan, 81 Hong Kong and 82 Macao (also used on
/// residence permits, with 83 for Taiwan residents) and 91 for abroad.
fn is_province_code(code: u32) -> bool {
    matches!(code,
        11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81 | 82 | 83 | 91)
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ResidentId").field(&self.masked()).finish()
    }
}

impl TryFrom<String> for ResidentId {
    type Error = ResidentIdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ResidentId> for String {
    fn from(id: ResidentId) -> Self {
        id.value
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn today() -> NaiveDate {
        day(2025, 6, 1)
    }

    fn parse(s: &str) -> Result<ResidentId, ResidentIdError> {
        ResidentId::parse_on(s, today())
    }

    /// Check digits computed independently of this module (by hand from the
    /// standard), covering every check character.
    const VALID: &[&str] = &[
        "11010519491231002X",
        "110101199003071233",
        "440300199001011238",
        "310104200002294568",
        "810000198506150020",
        "910000200001010034",
        "530102198001010023",
        "110105200001010008",
        "110105200001010016",
        "110105200001010024",
        "110105200001010032",
        "110105200001010040",
        "110105200001010059",
        "110105200001010067",
        "110105200001010075",
        "110105200001010083",
        "110105200001010091",
    ];

    /// Replaces the check character with the right one, for building cases.
    fn with_check(first17: &str) -> String {
        let c = char::from(check_char(first17.as_bytes()));
        format!("{first17}{c}")
    }

    #[test]
    fn accepts_valid_numbers() {
        for s in VALID {
            let id = parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(id.as_str(), *s);
        }
    }

    #[test]
    fn well_known_sample() {
        let id = parse("11010519491231002X").unwrap();
        assert_eq!(id.birth_date(), day(1949, 12, 31));
        assert_eq!(id.masked(), "1101**********002X");
    }

    #[test]
    fn trims_and_normalises_lowercase_x() {
        let id = parse("  11010519491231002x\n").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id, parse("11010519491231002X").unwrap());
    }

    #[test]
    fn leap_day_is_a_real_date() {
        let id = parse("310104200002294568").unwrap();
        assert_eq!(id.birth_date(), day(2000, 2, 29));
    }

    #[test]
    fn wrong_length() {
        assert_eq!(parse(""), Err(ResidentIdError::WrongLength(0)));
        assert_eq!(
            parse("11010519491231002"),
            Err(ResidentIdError::WrongLength(17))
        );
        assert_eq!(
            parse("11010519491231002X0"),
            Err(ResidentIdError::WrongLength(19))
        );
        // First-generation 15-digit numbers are not accepted.
        assert_eq!(
            parse("110105491231002"),
            Err(ResidentIdError::WrongLength(15))
        );
        let e = parse("123").unwrap_err();
        assert_eq!(e.to_string(), "resident id must be 18 characters, got 3");
    }

    #[test]
    fn non_digit() {
        assert_eq!(
            parse("1101051949123100XX"),
            Err(ResidentIdError::NonDigit(17))
        );
        assert_eq!(
            parse("X10105194912310020"),
            Err(ResidentIdError::NonDigit(1))
        );
        assert_eq!(
            parse("110105 19491231002"),
            Err(ResidentIdError::NonDigit(7))
        );
        assert_eq!(
            parse("11010519491231002Y"),
            Err(ResidentIdError::NonDigit(18))
        );
        // Full-width digits are 18 chars but not ASCII digits.
        assert_eq!(
            parse("１1010519491231002X"),
            Err(ResidentIdError::NonDigit(1))
        );
        assert_eq!(
            parse("1101051949123100XX").unwrap_err().to_string(),
            "resident id must be 17 digits followed by a digit or X (bad character at position 17)"
        );
    }

    #[test]
    fn bad_check_digit() {
        assert_eq!(
            parse("110105194912310020"),
            Err(ResidentIdError::BadCheckDigit('X'))
        );
        assert_eq!(
            parse("11010119900307123X"),
            Err(ResidentIdError::BadCheckDigit('3'))
        );
        assert_eq!(
            parse("110101199003071234").unwrap_err().to_string(),
            "resident id check digit should be 3"
        );
        // A single mistyped digit anywhere is caught.
        let good = "110101199003071233";
        for i in 14..17 {
            let mut bad = good.as_bytes().to_vec();
            bad[i] = if bad[i] == b'9' { b'0' } else { bad[i] + 1 };
            let bad = String::from_utf8(bad).unwrap();
            assert!(
                matches!(parse(&bad), Err(ResidentIdError::BadCheckDigit(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_birth_date() {
        for first17 in [
            "11010519491331002", // month 13
            "11010519490001002", // month 0
            "11010519490100002", // day 0
            "11010519490230002", // 30 February
            "11010519000229002", // 1900 was not a leap year
            "11010519490431002", // 31 April
        ] {
            assert_eq!(
                parse(&with_check(first17)),
                Err(ResidentIdError::InvalidBirthDate),
                "{first17}"
            );
        }
        assert_eq!(
            parse(&with_check("11010519491331002"))
                .unwrap_err()
                .to_string(),
            "resident id birth date is not a valid calendar date"
        );
    }

    #[test]
    fn birth_date_in_the_future() {
        let tomorrow = with_check("11010520250602002");
        assert_eq!(parse(&tomorrow), Err(ResidentIdError::BirthDateInFuture));
        let today = with_check("11010520250601002");
        assert!(parse(&today).is_ok());
        assert_eq!(
            parse(&with_check("11010530000101002")),
            Err(ResidentIdError::BirthDateInFuture)
        );
    }

    #[test]
    fn birth_date_before_1900() {
        // A real sample with a valid check digit, but born in 1880.
        assert_eq!(
            parse("440524188001010014"),
            Err(ResidentIdError::BirthDateTooEarly)
        );
        assert_eq!(
            parse(&with_check("11010518991231002")),
            Err(ResidentIdError::BirthDateTooEarly)
        );
        assert!(parse(&with_check("11010519000101002")).is_ok());
        assert_eq!(
            ResidentIdError::BirthDateTooEarly.to_string(),
            "resident id birth date is before 1900"
        );
    }

    #[test]
    fn bad_region() {
        for code in [
            "00", "10", "16", "20", "24", "30", "38", "40", "47", "49", "55", "60", "66", "70",
            "72", "80", "84", "90", "92", "99",
        ] {
            let s = with_check(&format!("{code}0105194912310020")[..17]);
            assert_eq!(
                parse(&s),
                Err(ResidentIdError::BadRegion(code.parse().unwrap())),
                "{code}"
            );
        }
        assert_eq!(
            ResidentIdError::BadRegion(0).to_string(),
            "resident id region code 00 is not a valid province code"
        );
    }

    #[test]
    fn every_listed_province_code_is_accepted() {
        let codes = (11..=15)
            .chain(21..=23)
            .chain(31..=37)
            .chain(41..=46)
            .chain(50..=54)
            .chain(61..=65)
            .chain([71, 81, 82, 83, 91]);
        for code in codes {
            let s = with_check(&format!("{code}010519491231002"));
            assert!(parse(&s).is_ok(), "{code}");
        }
    }

    #[test]
    fn parse_uses_the_real_clock() {
        assert!(ResidentId::parse("11010519491231002X").is_ok());
        assert_eq!(
            ResidentId::parse(&with_check("11010599991231002")),
            Err(ResidentIdError::BirthDateInFuture)
        );
    }

    #[test]
    fn debug_is_masked() {
        let id = parse("11010519491231002X").unwrap();
        let shown = format!("{id:?}");
        assert_eq!(shown, r#"ResidentId("1101**********002X")"#);
        assert!(!shown.contains("19491231"));
    }

    #[test]
    fn errors_do_not_contain_the_number() {
        let cases = [
            "110105194912310020",
            "11010519491331002X",
            "00010519491231002X",
            "11010599991231002X",
        ];
        for s in cases {
            let msg = parse(s).unwrap_err().to_string();
            assert!(!msg.contains("1949") && !msg.contains("9999"), "{msg}");
        }
    }

    #[test]
    fn serde_roundtrip_validates() {
        let id = parse("11010519491231002X").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, r#""11010519491231002X""#);
        let back: ResidentId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<ResidentId>(r#""110105194912310020""#).is_err());
    }
}
