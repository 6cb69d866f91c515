//! SLA clocks: a first-response and a resolution deadline per order, in
//! business time when the policy has hours, the resolution clock stopping in
//! the statuses the policy pauses in and resuming with the time left.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use hotline_kit::calendar::BusinessHours;

use super::order::Status;

#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub first_response: Duration,
    pub resolution: Duration,
    /// None: around the clock.
    pub hours: Option<BusinessHours>,
    /// Statuses the resolution clock stops in, beside the final ones.
    pub pause_on: Vec<Status>,
    /// A breached first response takes the order from an assignee who has
    /// not accepted it, to the dispatch rules' next candidate.
    pub redispatch_on_breach: bool,
}

/// A deadline fires its warning at this share of the time allowed.
const WARNING: f64 = 0.8;

/// What an order's timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deadline {
    ResponseWarning,
    Response,
    ResolutionWarning,
    Resolution,
}

impl Deadline {
    pub const ALL: [Self; 4] = [
        Self::ResponseWarning,
        Self::Response,
        Self::ResolutionWarning,
        Self::Resolution,
    ];

    /// The timer key's last part: `wo:<id>:response-warn`.
    pub fn suffix(self) -> &'static str {
        match self {
            Self::ResponseWarning => "response-warn",
            Self::Response => "response",
            Self::ResolutionWarning => "resolution-warn",
            Self::Resolution => "resolution",
        }
    }

    pub fn parse(suffix: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.suffix() == suffix)
    }

    /// Which clock: response or resolution.
    pub fn clock(self) -> &'static str {
        match self {
            Self::ResponseWarning | Self::Response => "response",
            Self::ResolutionWarning | Self::Resolution => "resolution",
        }
    }

    pub fn is_breach(self) -> bool {
        matches!(self, Self::Response | Self::Resolution)
    }

    /// Whether it still has something to do on an order with these clocks.
    pub fn pending(self, clocks: &Clocks) -> bool {
        match self {
            Self::ResponseWarning => clocks.responded_at.is_none() && !clocks.response_warned,
            Self::Response => clocks.responded_at.is_none() && clocks.response_met.is_none(),
            Self::ResolutionWarning => clocks.running_since.is_some() && !clocks.resolution_warned,
            Self::Resolution => clocks.running_since.is_some() && clocks.resolution_met.is_none(),
        }
    }
}

fn share(span: Duration, fraction: f64) -> Duration {
    // Millisecond precision is plenty for deadlines; the cast can't overflow
    // for spans of at most 90 days.
    #[expect(clippy::cast_possible_truncation, reason = "bounded spans")]
    let millis = (span.num_milliseconds() as f64 * fraction) as i64;
    Duration::milliseconds(millis)
}

/// An order's clocks, as stored on it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Clocks {
    pub response_due_at: Option<DateTime<Utc>>,
    pub resolution_due_at: Option<DateTime<Utc>>,
    pub responded_at: Option<DateTime<Utc>>,
    pub response_met: Option<bool>,
    pub resolution_met: Option<bool>,
    pub used: Duration,
    pub running_since: Option<DateTime<Utc>>,
    pub response_warned: bool,
    pub resolution_warned: bool,
}

impl Policy {
    fn after(&self, start: DateTime<Utc>, span: Duration, zone: Tz) -> Option<DateTime<Utc>> {
        match &self.hours {
            None => Some(start + span),
            Some(hours) => hours.add_business(start, span, zone),
        }
    }

    fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>, zone: Tz) -> Duration {
        match &self.hours {
            None => (to - from).max(Duration::zero()),
            Some(hours) => hours.business_between(from, to, zone),
        }
    }

    /// Whether the resolution clock stands still in `status`.
    pub fn pauses(&self, status: Status) -> bool {
        !status.is_open() || self.pause_on.contains(&status)
    }

    /// The clocks of an order opened at `now`.
    pub fn start(&self, now: DateTime<Utc>, zone: Tz) -> Clocks {
        Clocks {
            response_due_at: self.after(now, self.first_response, zone),
            resolution_due_at: self.after(now, self.resolution, zone),
            running_since: Some(now),
            ..Clocks::default()
        }
    }

    /// The clocks after a step from `from` to `to` at `now`.
    pub fn step(
        &self,
        clocks: &mut Clocks,
        from: Status,
        to: Status,
        now: DateTime<Utc>,
        zone: Tz,
    ) {
        if to == Status::Accepted && clocks.responded_at.is_none() {
            clocks.responded_at = Some(now);
            clocks.response_met = clocks.response_due_at.map(|due| now <= due);
        }
        match (clocks.running_since, self.pauses(to)) {
            (Some(since), true) => {
                clocks.used += self.between(since, now, zone);
                clocks.running_since = None;
                if to == Status::Resolved {
                    // A breach already recorded stays one.
                    let breached = clocks.resolution_met == Some(false);
                    clocks.resolution_met =
                        clocks.resolution_due_at.map(|due| !breached && now <= due);
                }
            }
            (None, false) => {
                if matches!(from, Status::Resolved | Status::Closed) {
                    // Reopened: the resolution is to be met again, with the time left.
                    clocks.resolution_met = None;
                    clocks.resolution_warned = false;
                }
                clocks.running_since = Some(now);
                clocks.resolution_due_at = self.after(
                    now,
                    (self.resolution - clocks.used).max(Duration::zero()),
                    zone,
                );
            }
            (Some(_), false) | (None, true) => {}
        }
    }

    /// When each deadline still ahead of an order fires: its warning at 80 %
    /// of the time allowed, its breach at the deadline.
    pub fn deadlines(
        &self,
        clocks: &Clocks,
        created_at: DateTime<Utc>,
        zone: Tz,
    ) -> Vec<(Deadline, DateTime<Utc>)> {
        let mut due = Vec::new();
        let mut add = |deadline: Deadline, at: Option<DateTime<Utc>>| {
            if let Some(at) = at
                && deadline.pending(clocks)
            {
                due.push((deadline, at));
            }
        };
        add(
            Deadline::ResponseWarning,
            self.after(created_at, share(self.first_response, WARNING), zone),
        );
        add(Deadline::Response, clocks.response_due_at);
        if let Some(since) = clocks.running_since {
            let to_warning = share(self.resolution, WARNING) - clocks.used;
            add(
                Deadline::ResolutionWarning,
                self.after(since, to_warning.max(Duration::zero()), zone),
            );
            add(Deadline::Resolution, clocks.resolution_due_at);
        }
        due
    }

    /// The clocks under this policy instead of the one the order had (its
    /// type or priority changed): the time already used counts against it.
    pub fn reapply(
        &self,
        clocks: &mut Clocks,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
        zone: Tz,
    ) {
        if clocks.responded_at.is_none() {
            clocks.response_due_at = self.after(created_at, self.first_response, zone);
        }
        if let Some(since) = clocks.running_since {
            let used = clocks.used + self.between(since, now, zone);
            clocks.resolution_due_at =
                self.after(now, (self.resolution - used).max(Duration::zero()), zone);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn round_the_clock() -> Policy {
        Policy {
            first_response: Duration::hours(4),
            resolution: Duration::hours(48),
            hours: None,
            pause_on: vec![Status::WaitingCustomer],
            redispatch_on_breach: false,
        }
    }

    #[test]
    fn a_pause_stops_the_resolution_clock_and_resuming_gives_the_time_left() {
        let policy = round_the_clock();
        let zone = chrono_tz::Asia::Shanghai;
        let opened = at("2026-12-01T00:00:00Z");
        let mut clocks = policy.start(opened, zone);
        assert_eq!(clocks.response_due_at, Some(at("2026-12-01T04:00:00Z")));
        assert_eq!(clocks.resolution_due_at, Some(at("2026-12-03T00:00:00Z")));
        policy.step(
            &mut clocks,
            Status::New,
            Status::Dispatched,
            at("2026-12-01T01:00:00Z"),
            zone,
        );
        policy.step(
            &mut clocks,
            Status::Dispatched,
            Status::Accepted,
            at("2026-12-01T05:00:00Z"),
            zone,
        );
        assert_eq!(clocks.response_met, Some(false), "accepted an hour late");
        policy.step(
            &mut clocks,
            Status::Accepted,
            Status::WaitingCustomer,
            at("2026-12-01T10:00:00Z"),
            zone,
        );
        assert_eq!(clocks.used, Duration::hours(10));
        assert_eq!(clocks.running_since, None);
        // Parts don't pause this policy; the customer did, for four days.
        policy.step(
            &mut clocks,
            Status::WaitingCustomer,
            Status::InProgress,
            at("2026-12-05T10:00:00Z"),
            zone,
        );
        assert_eq!(clocks.resolution_due_at, Some(at("2026-12-07T00:00:00Z")));
        policy.step(
            &mut clocks,
            Status::InProgress,
            Status::Resolved,
            at("2026-12-06T10:00:00Z"),
            zone,
        );
        assert_eq!(clocks.resolution_met, Some(true));
        assert_eq!(clocks.used, Duration::hours(34));
        // Reopened: running again with 14 hours left, to be met again.
        policy.step(
            &mut clocks,
            Status::Closed,
            Status::New,
            at("2026-12-08T00:00:00Z"),
            zone,
        );
        assert_eq!(clocks.resolution_met, None);
        assert_eq!(clocks.resolution_due_at, Some(at("2026-12-08T14:00:00Z")));
    }

    #[test]
    fn warnings_come_at_eighty_percent_and_nothing_fires_twice() {
        let policy = round_the_clock();
        let zone = chrono_tz::Asia::Shanghai;
        let opened = at("2026-12-01T00:00:00Z");
        let mut clocks = policy.start(opened, zone);
        let due = policy.deadlines(&clocks, opened, zone);
        assert_eq!(
            due,
            [
                (Deadline::ResponseWarning, at("2026-12-01T03:12:00Z")),
                (Deadline::Response, at("2026-12-01T04:00:00Z")),
                (Deadline::ResolutionWarning, at("2026-12-02T14:24:00Z")),
                (Deadline::Resolution, at("2026-12-03T00:00:00Z")),
            ]
        );
        clocks.response_warned = true;
        clocks.response_met = Some(false);
        let left: Vec<Deadline> = policy
            .deadlines(&clocks, opened, zone)
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(left, [Deadline::ResolutionWarning, Deadline::Resolution]);
        // Paused: the resolution timers wait for the resume.
        policy.step(
            &mut clocks,
            Status::InProgress,
            Status::WaitingCustomer,
            at("2026-12-01T10:00:00Z"),
            zone,
        );
        assert!(policy.deadlines(&clocks, opened, zone).is_empty());
        for deadline in Deadline::ALL {
            assert_eq!(Deadline::parse(deadline.suffix()), Some(deadline));
        }
    }

    #[test]
    fn another_policy_counts_the_time_already_used() {
        let zone = chrono_tz::Asia::Shanghai;
        let opened = at("2026-12-01T00:00:00Z");
        let mut clocks = round_the_clock().start(opened, zone);
        let major = Policy {
            first_response: Duration::hours(2),
            resolution: Duration::hours(24),
            ..round_the_clock()
        };
        major.reapply(&mut clocks, opened, at("2026-12-01T01:00:00Z"), zone);
        assert_eq!(clocks.response_due_at, Some(at("2026-12-01T02:00:00Z")));
        assert_eq!(clocks.resolution_due_at, Some(at("2026-12-02T00:00:00Z")));
    }
}
