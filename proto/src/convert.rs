//! What every service's gRPC and event code converts the same way.
//!
//! One spelling rule between the protobuf enums and the rest of Hotline: REST,
//! the database and the configuration say `work_item` where the wire says
//! `CHANNEL_WORK_ITEM` (the value's name without its enum's prefix, in lower
//! case). `UNSPECIFIED` has no such name.

use chrono::{DateTime, Utc};

use crate::{events, identity, routing, ticketing};

/// A point in time on the wire.
pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// The wire value of a REST name; `UNSPECIFIED` (0) for one the enum lacks.
pub fn wire<E: RestName + Into<i32>>(rest_name: &str) -> i32 {
    E::from_rest_name(rest_name).map_or(0, Into::into)
}

/// An enum whose values are also known by their REST names.
pub trait RestName: Sized + Copy {
    /// `work_item` for `CHANNEL_WORK_ITEM`; empty for `UNSPECIFIED`.
    fn rest_name(self) -> String;
    /// The value with this REST name; `None` for a name the enum lacks.
    fn from_rest_name(name: &str) -> Option<Self>;
}

macro_rules! rest_names {
    ($($enum:ty => $prefix:literal),* $(,)?) => {$(
        impl RestName for $enum {
            fn rest_name(self) -> String {
                match self.as_str_name().strip_prefix($prefix) {
                    Some("UNSPECIFIED") | None => String::new(),
                    Some(name) => name.to_ascii_lowercase(),
                }
            }

            fn from_rest_name(name: &str) -> Option<Self> {
                if name.is_empty() || name.bytes().any(|b| b.is_ascii_uppercase()) {
                    return None;
                }
                Self::from_str_name(&format!("{}{}", $prefix, name.to_ascii_uppercase()))
                    .filter(|value| *value as i32 != 0)
            }
        }
    )*};
}

rest_names! {
    identity::v1::PhoneLabel => "PHONE_LABEL_",
    identity::v1::BillingStatus => "BILLING_STATUS_",
    identity::v1::MatchedOn => "MATCHED_ON_",
    routing::v1::TaskKind => "TASK_KIND_",
    routing::v1::Channel => "CHANNEL_",
    routing::v1::TaskStatus => "TASK_STATUS_",
    routing::v1::UpdateKind => "UPDATE_KIND_",
    ticketing::v1::AssigneeKind => "ASSIGNEE_KIND_",
    ticketing::v1::ActorKind => "ACTOR_KIND_",
    events::v1::SmsPurpose => "SMS_PURPOSE_",
}

#[cfg(test)]
mod tests {
    use super::*;
    use routing::v1::Channel;

    #[test]
    fn a_value_and_its_rest_name_go_both_ways_and_unspecified_has_none() {
        assert_eq!(Channel::WorkItem.rest_name(), "work_item");
        assert_eq!(
            Channel::from_rest_name("work_item"),
            Some(Channel::WorkItem)
        );
        assert_eq!(Channel::Unspecified.rest_name(), "");
        assert_eq!(wire::<Channel>("chat"), Channel::Chat as i32);
        assert_eq!(wire::<Channel>("fax"), 0);
        for refused in ["", "unspecified", "WORK_ITEM", "Work_item", "fax"] {
            assert_eq!(Channel::from_rest_name(refused), None, "{refused}");
        }
        assert_eq!(
            events::v1::SmsPurpose::from_rest_name("reply_error"),
            Some(events::v1::SmsPurpose::ReplyError)
        );
    }
}
