//! Business hours: when a queue is open, in the center's time zone, with
//! holidays and special opening days.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Opening hours of a queue. Outside them, the queue's `closed` overflow rule applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// IANA time zone, e.g. Asia/Shanghai; the center's (`routing.time_zone`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Weekly opening hours.
    pub weekly: Vec<OpeningHours>,
    /// Days closed all day (holidays), YYYY-MM-DD.
    #[serde(default)]
    pub closed_on: Vec<NaiveDate>,
    /// Days open on other hours than their weekday's (make-up working days).
    #[serde(default)]
    pub special: Vec<SpecialDay>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpeningHours {
    /// mon, tue, wed, thu, fri, sat, sun.
    pub days: Vec<Day>,
    /// HH:MM, local time.
    #[schema(value_type = String, example = "08:00")]
    pub from: NaiveTime,
    /// HH:MM, local time; 24:00 is written 23:59.
    #[schema(value_type = String, example = "20:00")]
    pub to: NaiveTime,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpecialDay {
    pub date: NaiveDate,
    #[schema(value_type = String)]
    pub from: NaiveTime,
    #[schema(value_type = String)]
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

    /// Whether the queue is open at `now`; `center` is the center's time zone.
    pub fn is_open(&self, now: DateTime<Utc>, center: Tz) -> bool {
        let zone = self
            .time_zone
            .as_deref()
            .and_then(|name| time_zone(name).ok())
            .unwrap_or(center);
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
}
