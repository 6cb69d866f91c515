//! The work order's status machine: the one table of legal transitions, and
//! who may take each.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    New,
    Dispatched,
    Accepted,
    InProgress,
    WaitingCustomer,
    WaitingParts,
    Resolved,
    Closed,
    Cancelled,
}

impl Status {
    pub const ALL: [Self; 9] = [
        Self::New,
        Self::Dispatched,
        Self::Accepted,
        Self::InProgress,
        Self::WaitingCustomer,
        Self::WaitingParts,
        Self::Resolved,
        Self::Closed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Dispatched => "dispatched",
            Self::Accepted => "accepted",
            Self::InProgress => "in_progress",
            Self::WaitingCustomer => "waiting_customer",
            Self::WaitingParts => "waiting_parts",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }

    /// Still to be worked: counts against its assignee's open orders.
    pub fn is_open(self) -> bool {
        !matches!(self, Self::Resolved | Self::Closed | Self::Cancelled)
    }

    fn is_waiting(self) -> bool {
        matches!(self, Self::WaitingCustomer | Self::WaitingParts)
    }

    /// Someone accepted it and works on it.
    fn is_worked(self) -> bool {
        matches!(self, Self::Accepted | Self::InProgress) || self.is_waiting()
    }
}

/// Why an order is on hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    WaitingCustomer,
    WaitingParts,
}

impl HoldReason {
    pub fn status(self) -> Status {
        match self {
            Self::WaitingCustomer => Status::WaitingCustomer,
            Self::WaitingParts => Status::WaitingParts,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Dispatch,
    Accept,
    Decline,
    Start,
    Hold,
    Resume,
    Resolve,
    Close,
    Reopen,
    Cancel,
}

impl Action {
    pub const ALL: [Self; 10] = [
        Self::Dispatch,
        Self::Accept,
        Self::Decline,
        Self::Start,
        Self::Hold,
        Self::Resume,
        Self::Resolve,
        Self::Close,
        Self::Reopen,
        Self::Cancel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dispatch => "dispatch",
            Self::Accept => "accept",
            Self::Decline => "decline",
            Self::Start => "start",
            Self::Hold => "hold",
            Self::Resume => "resume",
            Self::Resolve => "resolve",
            Self::Close => "close",
            Self::Reopen => "reopen",
            Self::Cancel => "cancel",
        }
    }

    /// Only the center's staff, never the assignee (a shop may not re-dispatch,
    /// close, reopen or cancel).
    pub fn staff_only(self) -> bool {
        matches!(
            self,
            Self::Dispatch | Self::Close | Self::Reopen | Self::Cancel
        )
    }

    /// The status this action leads to from `from`, or `None` when it is not
    /// legal there. `hold` names its waiting status; `reopen` needs the order
    /// to be within its reopen window (the caller decides that).
    pub fn apply(self, from: Status, hold: Option<HoldReason>) -> Option<Status> {
        use Status as S;
        let to = match self {
            Self::Dispatch if from == S::New || from == S::Dispatched || from.is_worked() => {
                S::Dispatched
            }
            Self::Accept if from == S::Dispatched => S::Accepted,
            Self::Decline if from == S::Dispatched => S::New,
            Self::Start if from == S::Accepted => S::InProgress,
            Self::Hold if matches!(from, S::Accepted | S::InProgress) => hold?.status(),
            Self::Resume if from.is_waiting() => S::InProgress,
            Self::Resolve if from.is_worked() => S::Resolved,
            Self::Close if from == S::Resolved => S::Closed,
            Self::Reopen if matches!(from, S::Resolved | S::Closed) => S::New,
            Self::Cancel if from.is_open() => S::Cancelled,
            Self::Dispatch
            | Self::Accept
            | Self::Decline
            | Self::Start
            | Self::Hold
            | Self::Resume
            | Self::Resolve
            | Self::Close
            | Self::Reopen
            | Self::Cancel => return None,
        };
        Some(to)
    }

    /// Every action legal from `from` (holds counted once).
    pub fn allowed_from(from: Status) -> Vec<Self> {
        Self::ALL
            .into_iter()
            .filter(|action| {
                action
                    .apply(from, Some(HoldReason::WaitingCustomer))
                    .is_some()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole table, row by row: every (status, action) pair not listed is illegal.
    #[test]
    fn only_the_listed_transitions_are_legal() {
        use Action as A;
        use Status as S;
        let legal: &[(S, A, S)] = &[
            (S::New, A::Dispatch, S::Dispatched),
            (S::New, A::Cancel, S::Cancelled),
            (S::Dispatched, A::Dispatch, S::Dispatched),
            (S::Dispatched, A::Accept, S::Accepted),
            (S::Dispatched, A::Decline, S::New),
            (S::Dispatched, A::Cancel, S::Cancelled),
            (S::Accepted, A::Dispatch, S::Dispatched),
            (S::Accepted, A::Start, S::InProgress),
            (S::Accepted, A::Hold, S::WaitingParts),
            (S::Accepted, A::Resolve, S::Resolved),
            (S::Accepted, A::Cancel, S::Cancelled),
            (S::InProgress, A::Dispatch, S::Dispatched),
            (S::InProgress, A::Hold, S::WaitingParts),
            (S::InProgress, A::Resolve, S::Resolved),
            (S::InProgress, A::Cancel, S::Cancelled),
            (S::WaitingCustomer, A::Dispatch, S::Dispatched),
            (S::WaitingCustomer, A::Resume, S::InProgress),
            (S::WaitingCustomer, A::Resolve, S::Resolved),
            (S::WaitingCustomer, A::Cancel, S::Cancelled),
            (S::WaitingParts, A::Dispatch, S::Dispatched),
            (S::WaitingParts, A::Resume, S::InProgress),
            (S::WaitingParts, A::Resolve, S::Resolved),
            (S::WaitingParts, A::Cancel, S::Cancelled),
            (S::Resolved, A::Close, S::Closed),
            (S::Resolved, A::Reopen, S::New),
            (S::Closed, A::Reopen, S::New),
        ];
        for from in S::ALL {
            for action in A::ALL {
                let expected = legal
                    .iter()
                    .find(|(f, a, _)| *f == from && *a == action)
                    .map(|(_, _, to)| *to);
                assert_eq!(
                    action.apply(from, Some(HoldReason::WaitingParts)),
                    expected,
                    "{} from {}",
                    action.as_str(),
                    from.as_str()
                );
            }
        }
        assert!(!S::Cancelled.is_open());
        assert!(Action::allowed_from(S::Cancelled).is_empty());
    }

    #[test]
    fn a_hold_needs_its_reason() {
        assert_eq!(Action::Hold.apply(Status::InProgress, None), None);
        assert_eq!(
            Action::Hold.apply(Status::InProgress, Some(HoldReason::WaitingCustomer)),
            Some(Status::WaitingCustomer)
        );
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        assert_eq!(Status::parse("open"), None);
    }
}
