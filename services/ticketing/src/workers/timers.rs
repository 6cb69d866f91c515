//! `ticketing.timers`: the lease holder polls the deadline timers any replica
//! may have written and fires the due ones, each in a transaction fenced by
//! the lease, so each fires once whichever replica is up.

use std::{sync::Arc, time::Duration};

use hotline_kit::lease::Leadership;
use tokio_util::sync::CancellationToken;

use crate::service::{Fired, TicketingService};

pub const LEASE: &str = "ticketing.timers";

/// Timers fired per poll at most; the rest wait for the next one.
const BATCH: u64 = 200;

pub async fn run(
    service: Arc<TicketingService>,
    leadership: Arc<Leadership>,
    poll: Duration,
    ttl: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let held = leadership.watch();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(poll) => {}
        }
        let Some(grant) = held.borrow().clone() else {
            continue;
        };
        let due = match service.due_timers(BATCH).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "reading due timers failed; will retry");
                continue;
            }
        };
        for timer in due {
            match service.fire(&grant, ttl, &timer).await {
                Ok(Fired::Done | Fired::Skipped) => {}
                Ok(Fired::Lost) => {
                    leadership.lost(&grant);
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, key = %timer.key, "firing a timer failed; will retry");
                    break;
                }
            }
        }
    }
}
