//! Phone numbers in one canonical form (E.164), so that the number an agent
//! types, the number on a customer record and the calling number the switch
//! reports all compare equal.

use std::fmt;
use std::str::FromStr;

use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;
use serde::{Deserialize, Serialize};

/// Longest input we hand to the numbering-plan parser: real numbers with
/// spaces and punctuation fit easily, and it bounds the parser's work.
pub const MAX_INPUT_CHARS: usize = 32;

/// Longest E.164 number (ITU-T E.164 allows at most 15 digits).
const MAX_E164_DIGITS: usize = 15;

/// Digits kept visible at the end of a masked number.
const MASK_KEEP_LAST: usize = 4;

/// Why a phone number was rejected; messages never contain the number itself,
/// because phone numbers are personal data and errors end up in logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("phone number is empty")]
    Empty,
    #[error("phone number is longer than {MAX_INPUT_CHARS} characters")]
    TooLong,
    #[error("phone number may only contain digits, spaces and + - ( ) . /")]
    InvalidCharacter,
    #[error("not a phone number")]
    NotANumber,
    #[error("phone number extensions are not supported")]
    Extension,
    #[error("not a valid phone number for region {0}")]
    InvalidForRegion(Region),
    #[error("not a valid phone number for country code +{0}")]
    InvalidForCountryCode(u16),
    #[error("not an e.164 phone number")]
    NotE164,
    #[error("unknown region {0:?}, expected an iso 3166 alpha-2 code such as CN")]
    UnknownRegion(String),
}

/// A numbering-plan region (ISO 3166 alpha-2, e.g. `CN`): decides how a
/// number typed without a country code is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(Id);

impl Region {
    /// Mainland China, the default for this call center.
    pub const CN: Region = Region(Id::CN);

    /// The numbering-plan library's identifier.
    pub fn id(self) -> Id {
        self.0
    }

    /// The ISO 3166 alpha-2 code, e.g. `"CN"`.
    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }

    /// The country calling code, e.g. 86 for CN.
    pub fn calling_code(self) -> Option<u16> {
        DATABASE.by_id(self.as_str()).map(|m| m.country_code())
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Region {
    type Err = PhoneError;

    /// Accepts `CN`, `cn` or ` CN `; rejects codes the numbering plan does
    /// not know, so that `calling_code` is always available.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let code = s.trim().to_ascii_uppercase();
        match Id::from_str(&code) {
            Ok(id) if DATABASE.by_id(code.as_str()).is_some() => Ok(Region(id)),
            Ok(_) | Err(_) => Err(PhoneError::UnknownRegion(s.trim().to_owned())),
        }
    }
}

impl TryFrom<String> for Region {
    type Error = PhoneError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Region> for String {
    fn from(region: Region) -> Self {
        region.as_str().to_owned()
    }
}

/// What kind of line a number is, as far as the numbering plan can tell;
/// used to decide whether SMS dispatch to the number makes sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneKind {
    Mobile,
    FixedLine,
    /// The plan cannot tell (e.g. the North American plan).
    FixedLineOrMobile,
    Other,
}

/// A phone number in E.164 form, e.g. `+8613800138000`.
///
/// `Debug` shows the masked form so that numbers do not leak into logs by
/// accident; `Display` and `as_str` give the full number.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Reads a number as a person would type it: national (`138 0013 8000`,
    /// `010 6552 9988`), with a country code (`+86 138-0013-8000`,
    /// `(+86) 13800138000`, `8613800138000`) or with the international
    /// prefix (`008613800138000`). Full-width digits are accepted because
    /// Chinese input methods produce them.
    pub fn parse(input: &str, default_region: Region) -> Result<PhoneNumber, PhoneError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(PhoneError::Empty);
        }
        if input.chars().count() > MAX_INPUT_CHARS {
            return Err(PhoneError::TooLong);
        }
        let input = normalise_chars(input)?;

        let first = phonenumber::parse(Some(default_region.id()), &input)
            .map_err(|_| PhoneError::NotANumber)?;
        if first.extension().is_some() {
            return Err(PhoneError::Extension);
        }
        if first.is_valid() {
            return Ok(Self::from_parsed(&first));
        }

        // Second chances, both of which must also be valid numbers:
        // an explicit `+` makes the default region irrelevant, and parsing
        // without it avoids region-specific quirks (e.g. `+800` numbers);
        // a bare number that starts with the region's calling code may be an
        // international number missing its `+`.
        let retry = if input.contains('+') {
            Some(input.clone())
        } else {
            let digits: String = input.chars().filter(char::is_ascii_digit).collect();
            default_region
                .calling_code()
                .map(|code| code.to_string())
                .filter(|code| digits.len() > code.len() && digits.starts_with(code.as_str()))
                .map(|_| format!("+{digits}"))
        };
        if let Some(candidate) = retry
            && let Ok(second) = phonenumber::parse(None, &candidate)
            && second.extension().is_none()
            && second.is_valid()
        {
            return Ok(Self::from_parsed(&second));
        }

        let code = first.code().value();
        if default_region.calling_code() == Some(code) {
            Err(PhoneError::InvalidForRegion(default_region))
        } else {
            Err(PhoneError::InvalidForCountryCode(code))
        }
    }

    /// Accepts a number already in E.164 form (`+` and up to 15 digits), as
    /// stored by this type. It deliberately does not re-check the numbering
    /// plan, so that stored numbers still load after the plan data changes.
    pub fn from_e164(value: &str) -> Result<PhoneNumber, PhoneError> {
        let digits = value.strip_prefix('+').ok_or(PhoneError::NotE164)?;
        if digits.is_empty()
            || digits.len() > MAX_E164_DIGITS
            || digits.starts_with('0')
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(PhoneError::NotE164);
        }
        let parsed = phonenumber::parse(None, value).map_err(|_| PhoneError::NotE164)?;
        let canonical = Self::from_parsed(&parsed);
        if canonical.0 == value {
            Ok(canonical)
        } else {
            Err(PhoneError::NotE164)
        }
    }

    fn from_parsed(number: &phonenumber::PhoneNumber) -> PhoneNumber {
        PhoneNumber(number.format().mode(phonenumber::Mode::E164).to_string())
    }

    /// The E.164 string, e.g. `+8613800138000`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For logs and screens that need not show the whole number: the country
    /// code and the last four digits, e.g. `+86*******8000`.
    pub fn masked(&self) -> String {
        let digits = self.0.strip_prefix('+').unwrap_or(&self.0);
        let (code, national) = split_calling_code(digits).unwrap_or(("", digits));
        let keep = national.len().min(MASK_KEEP_LAST);
        let hidden = national.len() - keep;
        format!("+{code}{}{}", "*".repeat(hidden), &national[hidden..])
    }

    /// The kind of line according to the numbering plan.
    pub fn kind(&self) -> PhoneKind {
        let Ok(parsed) = phonenumber::parse(None, &self.0) else {
            return PhoneKind::Other;
        };
        use phonenumber::Type;
        match parsed.number_type(&DATABASE) {
            Type::Mobile => PhoneKind::Mobile,
            Type::FixedLine => PhoneKind::FixedLine,
            Type::FixedLineOrMobile => PhoneKind::FixedLineOrMobile,
            Type::TollFree
            | Type::PremiumRate
            | Type::SharedCost
            | Type::PersonalNumber
            | Type::Voip
            | Type::Pager
            | Type::Uan
            | Type::Emergency
            | Type::Voicemail
            | Type::ShortCode
            | Type::StandardRate
            | Type::Carrier
            | Type::NoInternational
            | Type::Unknown => PhoneKind::Other,
        }
    }
}

/// Splits E.164 digits (without `+`) into calling code and national number.
/// Calling codes are prefix-free, so the first known prefix is the code.
fn split_calling_code(digits: &str) -> Option<(&str, &str)> {
    (1..=3).filter(|&n| n < digits.len()).find_map(|n| {
        let (code, national) = digits.split_at_checked(n)?;
        let value: u16 = code.parse().ok()?;
        DATABASE.by_code(&value).map(|_| (code, national))
    })
}

/// Maps full-width digits and punctuation to ASCII and rejects anything that
/// is not part of a plainly written number. The parser would otherwise read
/// letters as vanity digits and pick numbers out of free text.
fn normalise_chars(input: &str) -> Result<String, PhoneError> {
    input
        .chars()
        .map(|c| {
            // The full-width forms block mirrors printable ASCII at a fixed offset.
            let c = match c {
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
                '\u{2010}'..='\u{2015}' => '-',
                other => other,
            };
            match c {
                '0'..='9' | '+' | '-' | '(' | ')' | '.' | '/' => Ok(c),
                c if c.is_whitespace() => Ok(' '),
                _ => Err(PhoneError::InvalidCharacter),
            }
        })
        .collect()
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PhoneNumber").field(&self.masked()).finish()
    }
}

impl AsRef<str> for PhoneNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::from_e164(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(number: PhoneNumber) -> Self {
        number.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn cn(input: &str) -> Result<PhoneNumber, PhoneError> {
        PhoneNumber::parse(input, Region::CN)
    }

    #[test]
    fn chinese_mobile_in_every_common_spelling() {
        for input in [
            "138 0013 8000",
            "13800138000",
            "+86 138-0013-8000",
            "+8613800138000",
            "8613800138000",
            "86 138 0013 8000",
            "008613800138000",
            "0086 138 0013 8000",
            "(+86) 13800138000",
            "+86 (138) 0013-8000",
            "138.0013.8000",
            "  138 0013 8000\n",
            "１３８ ００１３ ８０００",
            "＋８６　１３８００１３８０００",
        ] {
            let n = cn(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(n.as_str(), "+8613800138000", "{input:?}");
        }
    }

    #[test]
    fn chinese_landline() {
        for input in [
            "010 6552 9988",
            "010-65529988",
            "+86 10 6552 9988",
            "+86 (0)10 6552 9988",
            "0086 10 6552 9988",
            "861065529988",
            "86 010 6552 9988",
        ] {
            let n = cn(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(n.as_str(), "+861065529988", "{input:?}");
        }
        assert_eq!(cn("020 8888 8888").unwrap().as_str(), "+862088888888");
    }

    #[test]
    fn foreign_numbers_keep_their_country() {
        assert_eq!(cn("+1 650 253 0000").unwrap().as_str(), "+16502530000");
        assert_eq!(cn("+44 20 7031 3000").unwrap().as_str(), "+442070313000");
        assert_eq!(cn("+44 (0)20 7031 3000").unwrap().as_str(), "+442070313000");
        assert_eq!(cn("00 44 20 7031 3000").unwrap().as_str(), "+442070313000");
        assert_eq!(cn("+852 2123 4567").unwrap().as_str(), "+85221234567");
        assert_eq!(cn("+886 912 345 678").unwrap().as_str(), "+886912345678");
        // Non-geographic numbers are read correctly despite the CN default.
        assert_eq!(cn("+800 1234 5678").unwrap().as_str(), "+80012345678");
    }

    #[test]
    fn other_default_regions() {
        let us: Region = "US".parse().unwrap();
        assert_eq!(
            PhoneNumber::parse("(650) 253-0000", us).unwrap().as_str(),
            "+16502530000"
        );
        let gb: Region = "gb".parse().unwrap();
        assert_eq!(
            PhoneNumber::parse("020 7031 3000", gb).unwrap().as_str(),
            "+442070313000"
        );
        assert_eq!(
            PhoneNumber::parse("+86 138 0013 8000", gb)
                .unwrap()
                .as_str(),
            "+8613800138000"
        );
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(cn(""), Err(PhoneError::Empty));
        assert_eq!(cn("   "), Err(PhoneError::Empty));
        assert_eq!(cn("abc"), Err(PhoneError::InvalidCharacter));
        assert_eq!(
            cn("call me at 13800138000"),
            Err(PhoneError::InvalidCharacter)
        );
        assert_eq!(cn("1-800-FLOWERS"), Err(PhoneError::InvalidCharacter));
        assert_eq!(cn("13800138000 ext 5"), Err(PhoneError::InvalidCharacter));
        assert_eq!(cn("13800138000#"), Err(PhoneError::InvalidCharacter));
        assert_eq!(
            cn("tel:+86-138-0013-8000"),
            Err(PhoneError::InvalidCharacter)
        );
        assert_eq!(cn("123"), Err(PhoneError::InvalidForRegion(Region::CN)));
        assert_eq!(cn("+"), Err(PhoneError::NotANumber));
        assert_eq!(cn("++"), Err(PhoneError::NotANumber));
        assert_eq!(cn("-"), Err(PhoneError::NotANumber));
        assert_eq!(cn("+86"), Err(PhoneError::NotANumber));
        assert_eq!(cn("+999 1234"), Err(PhoneError::NotANumber));
        let long = "1".repeat(MAX_INPUT_CHARS + 1);
        assert_eq!(cn(&long), Err(PhoneError::TooLong));
        let spaced = format!("138 0013 8000{}", " ".repeat(20));
        assert!(
            cn(&spaced).is_ok(),
            "trailing space is trimmed before the length check"
        );
    }

    #[test]
    fn rejects_numbers_the_plan_says_are_invalid() {
        for input in [
            "1380013800",       // one digit short
            "138001380001",     // one digit long
            "12345678901",      // no such mobile prefix
            "+86 138 0013 800", // short with country code
            "+86 1000",
            "95533", // bank short code, not a dialable customer number
            "0",
            "00",
        ] {
            let r = cn(input);
            assert!(
                matches!(
                    r,
                    Err(PhoneError::InvalidForRegion(_) | PhoneError::NotANumber)
                ),
                "{input:?}: {r:?}"
            );
        }
        assert_eq!(
            cn("1380013800").unwrap_err().to_string(),
            "not a valid phone number for region CN"
        );
        assert_eq!(
            cn("+44 20 7031").unwrap_err(),
            PhoneError::InvalidForCountryCode(44)
        );
        assert_eq!(
            cn("+44 20 7031").unwrap_err().to_string(),
            "not a valid phone number for country code +44"
        );
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        for input in [
            "+0",
            "+00",
            "0086",
            "0086-",
            "+1 ",
            "()",
            "(+)",
            "+(86)",
            "86",
            "8",
            "+8",
            "++86 138",
            "+86+86+86",
            "0000000000000000",
            "9999999999999999",
            "+999999999999999999",
            "+8613800138000000000",
            "///",
            "...",
            "+-+-+-",
            "(((((((((1)))))))))",
            "00 00 00",
            "\u{3000}",
            "８６",
        ] {
            let _ = cn(input);
            let _ = PhoneNumber::from_e164(input);
        }
    }

    #[test]
    fn errors_do_not_contain_the_number() {
        for input in ["1380013800", "+44 20 7031", "13800x138000", "+999 1234"] {
            let msg = cn(input).unwrap_err().to_string();
            assert!(
                !msg.contains("138") && !msg.contains("7031") && !msg.contains("1234"),
                "{msg}"
            );
        }
    }

    #[test]
    fn region_parsing() {
        assert_eq!("CN".parse::<Region>().unwrap(), Region::CN);
        assert_eq!(" cn ".parse::<Region>().unwrap(), Region::CN);
        assert_eq!(Region::CN.to_string(), "CN");
        assert_eq!(Region::CN.calling_code(), Some(86));
        assert_eq!(Region::CN.id(), Id::CN);
        assert_eq!("GB".parse::<Region>().unwrap().calling_code(), Some(44));
        for bad in ["", "XX", "China", "C", "CHN", "001"] {
            assert_eq!(
                bad.parse::<Region>(),
                Err(PhoneError::UnknownRegion(bad.to_owned())),
                "{bad:?}"
            );
        }
        assert_eq!(
            "XX".parse::<Region>().unwrap_err().to_string(),
            r#"unknown region "XX", expected an iso 3166 alpha-2 code such as CN"#
        );
        let json = serde_json::to_string(&Region::CN).unwrap();
        assert_eq!(json, r#""CN""#);
        assert_eq!(serde_json::from_str::<Region>(&json).unwrap(), Region::CN);
        assert!(serde_json::from_str::<Region>(r#""ZZ""#).is_err());
    }

    #[test]
    fn masked_keeps_country_code_and_last_four() {
        assert_eq!(cn("13800138000").unwrap().masked(), "+86*******8000");
        assert_eq!(cn("010 6552 9988").unwrap().masked(), "+86******9988");
        assert_eq!(cn("+1 650 253 0000").unwrap().masked(), "+1******0000");
        assert_eq!(cn("+44 20 7031 3000").unwrap().masked(), "+44******3000");
        assert_eq!(cn("+852 2123 4567").unwrap().masked(), "+852****4567");
        assert_eq!(cn("+800 1234 5678").unwrap().masked(), "+800****5678");
    }

    #[test]
    fn display_debug_and_as_str() {
        let n = cn("138 0013 8000").unwrap();
        assert_eq!(n.to_string(), "+8613800138000");
        assert_eq!(n.as_str(), "+8613800138000");
        assert_eq!(AsRef::<str>::as_ref(&n), "+8613800138000");
        assert_eq!(format!("{n:?}"), r#"PhoneNumber("+86*******8000")"#);
        assert_eq!(String::from(n), "+8613800138000");
    }

    #[test]
    fn serde_is_the_e164_string() {
        let n = cn("138 0013 8000").unwrap();
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(json, r#""+8613800138000""#);
        assert_eq!(serde_json::from_str::<PhoneNumber>(&json).unwrap(), n);
        // Deserialising wants the canonical form, not a typed-in number.
        for bad in [
            r#""13800138000""#,
            r#""+86 138 0013 8000""#,
            r#""+86013800138000""#,
            r#""+0123""#,
            r#""+""#,
            r#""""#,
            r#""+12345678901234567""#,
        ] {
            assert!(serde_json::from_str::<PhoneNumber>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn from_e164_accepts_stored_numbers() {
        assert_eq!(
            PhoneNumber::from_e164("+8613800138000").unwrap(),
            cn("13800138000").unwrap()
        );
        assert_eq!(
            PhoneNumber::from_e164("+442070313000").unwrap().as_str(),
            "+442070313000"
        );
        assert_eq!(
            PhoneNumber::from_e164("8613800138000"),
            Err(PhoneError::NotE164)
        );
        assert_eq!(
            PhoneNumber::from_e164("+86 13800138000"),
            Err(PhoneError::NotE164)
        );
        assert_eq!(
            PhoneNumber::from_e164("+8613800138000 "),
            Err(PhoneError::NotE164)
        );
        assert_eq!(PhoneNumber::from_e164("+０86"), Err(PhoneError::NotE164));
    }

    #[test]
    fn kind_from_numbering_plan() {
        assert_eq!(cn("13800138000").unwrap().kind(), PhoneKind::Mobile);
        assert_eq!(cn("010 6552 9988").unwrap().kind(), PhoneKind::FixedLine);
        assert_eq!(
            cn("+1 650 253 0000").unwrap().kind(),
            PhoneKind::FixedLineOrMobile
        );
        assert_eq!(cn("400 810 8888").unwrap().kind(), PhoneKind::Other);
        assert_eq!(
            serde_json::to_string(&PhoneKind::FixedLineOrMobile).unwrap(),
            r#""fixed_line_or_mobile""#
        );
    }

    #[test]
    fn equal_numbers_compare_equal() {
        let a = cn("138 0013 8000").unwrap();
        let b = cn("+86 138-0013-8000").unwrap();
        assert_eq!(a, b);
        let set: std::collections::HashSet<_> = [a, b].into_iter().collect();
        assert_eq!(set.len(), 1);
    }
}
