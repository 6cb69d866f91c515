//! `ticketing.sms`: the lease holder runs the only provider session and
//! sends the queued messages any replica wrote, so the SMSC's limits are
//! global and each message goes out from one place.

use std::{sync::Arc, time::Duration};

use hotline_kit::lease::Leadership;
use tokio_util::sync::CancellationToken;

use crate::{
    service::{Fired, TicketingService},
    sms::SmsProvider,
};

pub const LEASE: &str = "ticketing.sms";

/// Messages sent per poll at most.
const BATCH: u64 = 500;

pub async fn run(
    service: Arc<TicketingService>,
    provider: Arc<dyn SmsProvider>,
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
        match service
            .send_due_sms(&grant, ttl, provider.as_ref(), BATCH)
            .await
        {
            Ok(Fired::Done | Fired::Skipped) => {}
            Ok(Fired::Lost) => leadership.lost(&grant),
            Err(error) => tracing::warn!(%error, "sending text messages failed; will retry"),
        }
    }
}
