//! A circuit breaker in front of a dependency the process can serve without:
//! after `FAILURES` consecutive failures the dependency is skipped for
//! `COOLDOWN`, then one request probes it (half-open). A dependency that is down
//! costs callers nothing; its state shows in metrics, and the logs say when it
//! goes and when it comes back, not on every request.

use std::{
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use crate::metrics;

/// Consecutive failures that open the circuit.
const FAILURES: u32 = 3;
/// How long an open circuit skips the dependency before probing it.
const COOLDOWN: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug)]
enum State {
    Closed {
        failures: u32,
    },
    /// Skipping the dependency until `probe_at`.
    Open {
        probe_at: Instant,
    },
    /// One probe is out; the others keep skipping until `probe_at` (when another
    /// probe goes, should this one never report).
    HalfOpen {
        probe_at: Instant,
    },
}

impl State {
    fn name(self) -> &'static str {
        match self {
            Self::Closed { .. } => "closed",
            Self::Open { .. } => "open",
            Self::HalfOpen { .. } => "half_open",
        }
    }
}

pub struct Breaker {
    dependency: &'static str,
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(dependency: &'static str) -> Self {
        let state = State::Closed { failures: 0 };
        metrics::set_breaker_state(dependency, state.name());
        metrics::set_dependency_up(dependency, true);
        Self {
            dependency,
            state: Mutex::new(state),
        }
    }

    /// Whether to use the dependency now: always while closed; once it is
    /// open, one caller per `COOLDOWN` (the probe).
    pub fn allows(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match *state {
            State::Closed { .. } => true,
            State::Open { probe_at } | State::HalfOpen { probe_at }
                if Instant::now() >= probe_at =>
            {
                self.enter(
                    &mut state,
                    State::HalfOpen {
                        probe_at: Instant::now() + COOLDOWN,
                    },
                );
                true
            }
            State::Open { .. } | State::HalfOpen { .. } => false,
        }
    }

    pub fn succeeded(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !matches!(*state, State::Closed { failures: 0 }) {
            self.enter(&mut state, State::Closed { failures: 0 });
        }
    }

    pub fn failed(&self, error: &str) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let failures = match *state {
            State::Closed { failures } => failures.saturating_add(1),
            State::Open { .. } | State::HalfOpen { .. } => FAILURES,
        };
        let next = if failures >= FAILURES {
            State::Open {
                probe_at: Instant::now() + COOLDOWN,
            }
        } else {
            State::Closed { failures }
        };
        if let (State::Closed { .. }, State::Open { .. }) = (*state, next) {
            tracing::warn!(
                dependency = self.dependency,
                error,
                cooldown = ?COOLDOWN,
                "{} failing: circuit open, serving without it and probing every {COOLDOWN:?}",
                self.dependency
            );
        }
        self.enter(&mut state, next);
    }

    /// Opens the circuit at once (the dependency did not answer at start).
    pub fn trip(&self, error: &str) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        tracing::warn!(
            dependency = self.dependency,
            error,
            "{} unreachable: circuit open, serving without it until it answers",
            self.dependency
        );
        self.enter(
            &mut state,
            State::Open {
                probe_at: Instant::now() + COOLDOWN,
            },
        );
    }

    fn enter(&self, state: &mut State, next: State) {
        let was_closed = matches!(*state, State::Closed { .. });
        let closing = matches!(next, State::Closed { .. });
        if !was_closed && closing {
            tracing::info!(
                dependency = self.dependency,
                "{} answers again: circuit closed",
                self.dependency
            );
        }
        if state.name() != next.name() {
            metrics::set_breaker_state(self.dependency, next.name());
        }
        if was_closed != closing {
            metrics::set_dependency_up(self.dependency, closing);
        }
        *state = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_lets_one_probe_through() {
        let breaker = Breaker::new("test");
        breaker.failed("x");
        breaker.succeeded();
        breaker.failed("x");
        breaker.failed("x");
        assert!(breaker.allows(), "failures must be consecutive");
        breaker.failed("x");
        assert!(!breaker.allows());
        *breaker.state.lock().unwrap_or_else(PoisonError::into_inner) = State::Open {
            probe_at: Instant::now(),
        };
        assert!(breaker.allows(), "the probe");
        assert!(!breaker.allows(), "one probe at a time");
        breaker.succeeded();
        assert!(breaker.allows());
    }
}
