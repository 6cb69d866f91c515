//! The center's configuration of ticketing: work-order types, the category
//! tree, the region hierarchy, resolution codes and assignees, and the rules
//! their input must follow.

use hotline_kit::{error::Problems, rest::is_plain_text};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    /// A major fault (e.g. an area without signal).
    Major,
    Critical,
}

impl Priority {
    pub const ALL: [Self; 4] = [Self::Low, Self::Normal, Self::Major, Self::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::Major => "major",
            Self::Critical => "critical",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == value)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssigneeKind {
    /// An in-house technician, reached by SMS.
    Technician,
    /// A partner repair shop, reached through its API client and webhooks.
    Shop,
}

impl AssigneeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Technician => "technician",
            Self::Shop => "shop",
        }
    }
}

/// Longest name of anything configured.
pub const MAX_NAME: usize = 100;

/// The checks of ticketing's input, collected in the kit's [`Problems`].
pub trait Checks {
    fn code(&mut self, pointer: &str, value: &str);
    fn text(&mut self, pointer: &str, value: &str, max: usize);
    fn prose(&mut self, pointer: &str, value: &str, max: usize);
}

impl Checks for Problems {
    /// A machine key: 1 to 40 of a–z, 0–9 and `_`.
    fn code(&mut self, pointer: &str, value: &str) {
        let ok = (1..=40).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            self.add(pointer, "must be 1 to 40 of a-z, 0-9 and _");
        }
    }

    /// Plain text of 1 to `max` characters.
    fn text(&mut self, pointer: &str, value: &str, max: usize) {
        let length = value.chars().count();
        if value.trim().is_empty() {
            self.add(pointer, "must not be empty");
        } else if length > max {
            self.add(pointer, format!("must be at most {max} characters"));
        } else if !is_plain_text(value) {
            self.add(pointer, hotline_kit::rest::CONTROL_CHARACTERS);
        }
    }

    /// Free text that may span lines (descriptions, notes): no other control
    /// characters, at most `max` characters.
    fn prose(&mut self, pointer: &str, value: &str, max: usize) {
        if value.chars().count() > max {
            self.add(pointer, format!("must be at most {max} characters"));
        } else if value
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            self.add(
                pointer,
                "must not contain control characters other than line breaks and tabs",
            );
        }
    }
}

/// A phone number as E.164 (`+8613800138000`), read in `region` when it has
/// no country code.
pub fn e164(value: &str, region: phonenumber::country::Id) -> Option<String> {
    let parsed = phonenumber::parse(Some(region), value).ok()?;
    phonenumber::is_valid(&parsed)
        .then(|| parsed.format().mode(phonenumber::Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_short_lowercase_keys() {
        let mut problems = Problems::default();
        problems.code("/a", "fault_repair");
        problems.code("/b", "no_signal_2");
        assert!(problems.0.is_empty());
        for bad in ["", "Fault", "no-signal", "电视", &"x".repeat(41)] {
            let mut problems = Problems::default();
            problems.code("/code", bad);
            assert_eq!(problems.0.len(), 1, "{bad}");
        }
    }

    #[test]
    fn prose_keeps_line_breaks_and_refuses_other_control_characters() {
        let mut problems = Problems::default();
        problems.prose("/d", "no signal\nsince Monday\t(all channels)", 4000);
        assert!(problems.finish(()).is_ok());
        let mut problems = Problems::default();
        problems.prose("/d", "bell\u{7}", 4000);
        problems.prose("/e", &"长".repeat(4001), 4000);
        assert_eq!(problems.0.len(), 2);
    }

    #[test]
    fn phones_become_e164() {
        let cn = phonenumber::country::Id::CN;
        assert_eq!(e164("13800138000", cn).as_deref(), Some("+8613800138000"));
        assert_eq!(
            e164("+86 138 0013 8000", cn).as_deref(),
            Some("+8613800138000")
        );
        assert_eq!(e164("12345", cn), None);
        assert_eq!(e164("not a phone", cn), None);
    }
}
