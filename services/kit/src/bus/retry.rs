//! What a consumer does with a failing handler, on either backend: retry with
//! exponential backoff while it holds the event, then give up and dead-letter it.
//!
//! Holding the event (instead of requeueing it at once) keeps a short database
//! blip from burning through the delivery limit in milliseconds, and keeps the
//! queue's order for the events behind it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{Event, EventHandler, deliver};

/// How often and how patiently a failing handler is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts, across redeliveries, before the event is dead-lettered (at least 1).
    pub delivery_limit: u32,
    /// The wait after the first failure; it doubles after each further one.
    pub initial_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The wait after the `failures`-th failed attempt (1-based).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.initial_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            delivery_limit: 5,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// How a delivery ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Settlement {
    /// Applied: ack it.
    Handled,
    /// Failed at the delivery limit (the last error): keep it as a dead letter.
    DeadLetter(String),
    /// Shutdown came while waiting to retry: give it back to the queue.
    Requeue,
}

/// Hands `event` to `handler`, retrying with backoff until it succeeds, the
/// delivery limit is reached or `shutdown` is cancelled. Earlier deliveries
/// (`event.redeliveries`, e.g. by a replica that died mid-event) count as
/// attempts.
pub(crate) async fn settle(
    handler: &dyn EventHandler,
    event: &mut Event,
    consumer: &str,
    system: &'static str,
    policy: &RetryPolicy,
    shutdown: &CancellationToken,
) -> Settlement {
    let limit = policy.delivery_limit.max(1);
    loop {
        let attempt = event.redeliveries.saturating_add(1);
        let error = match deliver(handler, event, consumer, system).await {
            Ok(()) => return Settlement::Handled,
            Err(error) => error,
        };
        if attempt >= limit {
            warn!(
                event_id = %event.id,
                kind = %event.kind,
                consumer,
                attempt,
                error = %error,
                "event handler failed at the delivery limit; dead-lettering the event"
            );
            crate::metrics::record_event_dead_lettered(consumer, &event.kind);
            return Settlement::DeadLetter(error.to_string());
        }
        let wait = policy.delay(attempt);
        warn!(
            event_id = %event.id,
            kind = %event.kind,
            consumer,
            attempt,
            retry_in = ?wait,
            error = %error,
            "event handler failed; retrying"
        );
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return Settlement::Requeue,
            () = tokio::time::sleep(wait) => {}
        }
        event.redeliveries = attempt;
    }
}

#[cfg(test)]
mod tests {
    use super::RetryPolicy;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            delivery_limit: 10,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(700),
        };
        let waits: Vec<u128> = (1..=5).map(|n| policy.delay(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 700, 700]);
        assert_eq!(policy.delay(u32::MAX), Duration::from_millis(700));
    }
}
