//! `ticketing.sms`: the lease holder runs the only provider session and
//! sends the queued messages any replica wrote, so the SMSC's limits are
//! global and each message goes out from one place.
//!
//! Up to the provider's window of messages are in flight at once, each in its
//! own task; results are recorded in batches (every [`FLUSH`] or
//! [`BATCH`] results) while the next ones are on their way. Nothing marks a
//! message as taken: one in flight when the holder dies is still `queued`,
//! and the next holder sends it again with the same id.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use hotline_kit::{ErrorCode, lease::Leadership};
use tokio::{sync::mpsc, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    service::{Fired, SmsOutcome, TicketingService},
    sms::{SmsProvider, smpp::Report},
};

pub const LEASE: &str = "ticketing.sms";

/// Results recorded in one transaction at most...
const BATCH: usize = 500;
/// ...and held back this long at most.
const FLUSH: Duration = Duration::from_millis(20);
/// A receipt for a part not recorded yet (it overtook its `submit_sm_resp`)
/// is tried again this often, this many times, then dropped.
const EARLY_RECEIPT_WAIT: Duration = Duration::from_secs(1);
const EARLY_RECEIPT_TRIES: u32 = 60;

pub async fn run(
    service: Arc<TicketingService>,
    provider: Arc<dyn SmsProvider>,
    leadership: Arc<Leadership>,
    poll: Duration,
    ttl: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let held = leadership.watch();
    let window = provider.window().max(1);
    let mut in_flight: HashSet<uuid::Uuid> = HashSet::new();
    let mut sending: JoinSet<SmsOutcome> = JoinSet::new();
    let mut done: Vec<SmsOutcome> = Vec::new();
    let mut next_look = Instant::now();
    let mut flush_by: Option<Instant> = None;
    loop {
        let holding = held.borrow().is_some();
        // Looks are taken for a quarter of the window at least, not for each
        // text that finishes.
        let room = window - sending.len();
        let worth = room >= (window / 4).max(1) || sending.is_empty();
        if holding && worth && Instant::now() >= next_look {
            match service.due_sms(&in_flight, room).await {
                Ok(due) => {
                    // A full page means more are waiting: look again as soon
                    // as there is room.
                    next_look = if due.len() == room {
                        Instant::now()
                    } else {
                        Instant::now() + poll
                    };
                    for (message, outbound) in due {
                        in_flight.insert(message.id);
                        let provider = provider.clone();
                        sending.spawn(async move {
                            let result = provider.submit(&outbound).await;
                            SmsOutcome { message, result }
                        });
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "reading queued text messages failed; will retry");
                    next_look = Instant::now() + poll;
                }
            }
        }
        // Wake for the next look only when one could be taken.
        let mut wake = Instant::now() + poll;
        if holding && worth {
            wake = wake.min(next_look);
        }
        if let Some(at) = flush_by {
            wake = wake.min(at);
        }
        let wake = wake.max(Instant::now());
        tokio::select! {
            () = shutdown.cancelled() => break,
            finished = sending.join_next(), if !sending.is_empty() => {
                match finished {
                    Some(Ok(outcome)) => {
                        flush_by.get_or_insert_with(|| Instant::now() + FLUSH);
                        done.push(outcome);
                    }
                    Some(Err(error)) => tracing::error!(%error, "a text's send task failed"),
                    None => {}
                }
            }
            () = tokio::time::sleep_until(wake.into()) => {}
        }
        let due = flush_by.is_some_and(|at| Instant::now() >= at);
        if done.len() >= BATCH
            || (due && !done.is_empty())
            || (sending.is_empty() && !done.is_empty())
        {
            flush_by = None;
            let batch = std::mem::take(&mut done);
            let ids: Vec<_> = batch.iter().map(|o| o.message.id).collect();
            let current = held.borrow().clone();
            match current {
                Some(grant) => match service
                    .record_sms(&grant, ttl, provider.name(), batch)
                    .await
                {
                    Ok(Fired::Done | Fired::Skipped) => {}
                    Ok(Fired::Lost) => leadership.lost(&grant),
                    // They stay queued: sent again, with the same ids.
                    Err(error) => tracing::warn!(%error, "recording sent text messages failed"),
                },
                None => tracing::warn!(
                    count = ids.len(),
                    "the lease ended before sent texts were recorded; they will be sent again"
                ),
            }
            for id in ids {
                in_flight.remove(&id);
            }
        }
    }
    // What was sent before the end is recorded if the lease still holds.
    while let Some(Ok(outcome)) = sending.join_next().await {
        done.push(outcome);
    }
    let current = held.borrow().clone();
    if let Some(grant) = current {
        let _ = service.record_sms(&grant, ttl, provider.name(), done).await;
    }
    Ok(())
}

/// What an SMSC reports (receipts, technicians' texts), recorded and then
/// acknowledged; receipts in batches.
pub async fn reports(
    service: Arc<TicketingService>,
    retry: mpsc::Sender<Report>,
    mut reports: mpsc::Receiver<Report>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut tries: std::collections::HashMap<String, u32> = Default::default();
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            report = reports.recv() => match report {
                Some(report) => report,
                None => return Ok(()),
            },
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match reports.try_recv() {
                Ok(report) => batch.push(report),
                Err(_) => break,
            }
        }
        let mut receipts = Vec::new();
        let mut acks = Vec::new();
        for report in batch {
            match report {
                Report::Text { from, text, ack } => {
                    match service.receive_sms("smpp", &from, &text).await {
                        Err(error)
                            if matches!(
                                error.code,
                                ErrorCode::Internal | ErrorCode::Unavailable | ErrorCode::Timeout
                            ) =>
                        {
                            // Unacknowledged: the SMSC sends it again.
                            tracing::warn!(%error, "a technician's text was not recorded");
                        }
                        Err(error) => {
                            tracing::info!(%error, "a text from a phone refused");
                            ack.send().await;
                        }
                        Ok(_) => ack.send().await,
                    }
                }
                Report::Receipt { receipt, ack } => {
                    receipts.push(receipt);
                    acks.push(ack);
                }
            }
        }
        if receipts.is_empty() {
            continue;
        }
        let known = match service.sms_receipts(&receipts).await {
            Ok(known) => known,
            Err(error) => {
                tracing::warn!(%error, "recording delivery receipts failed; will retry");
                vec![false; receipts.len()]
            }
        };
        let mut held_back = Vec::new();
        for ((receipt, ack), known) in receipts.into_iter().zip(acks).zip(known) {
            let tried = tries.entry(receipt.part_id.clone()).or_default();
            *tried += 1;
            if known || *tried >= EARLY_RECEIPT_TRIES {
                if !known {
                    tracing::warn!(part_id = %receipt.part_id, "a delivery receipt for no known part dropped");
                }
                tries.remove(&receipt.part_id);
                ack.send().await;
            } else {
                held_back.push(Report::Receipt { receipt, ack });
            }
        }
        if !held_back.is_empty() {
            let retry = retry.clone();
            tokio::spawn(async move {
                tokio::time::sleep(EARLY_RECEIPT_WAIT).await;
                for report in held_back {
                    if retry.send(report).await.is_err() {
                        return;
                    }
                }
            });
        }
    }
}
