//! `ticketing.sms`: the lease holder runs the only provider session and
//! sends the queued messages any replica wrote, so the SMSC's limits are
//! global and each message goes out from one place.
//!
//! Up to the provider's window of messages are in flight at once, each in its
//! own task; a recorder task writes their results in batches (every [`FLUSH`]
//! or [`BATCH`] results) while the next ones are on their way. Nothing marks
//! a message as taken: one in flight when the holder dies is still `queued`,
//! and the next holder sends it again with the same id.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use hotline_kit::{ErrorCode, lease::Leadership};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    service::{Fired, SmsOutcome, TicketingService},
    sms::{SmsProvider, smpp::Report},
};

pub const LEASE: &str = "ticketing.sms";

/// Results recorded in one transaction at most...
const BATCH: usize = 500;
/// ...and held back this long at most.
const FLUSH: Duration = Duration::from_millis(20);
/// Batches recorded at once.
const RECORDERS: usize = 3;
/// A receipt for a part not recorded yet (it overtook its `submit_sm_resp`)
/// is tried again this often, this many times, then dropped.
const EARLY_RECEIPT_WAIT: Duration = Duration::from_secs(1);
const EARLY_RECEIPT_TRIES: u32 = 60;

/// Texts sent or being sent whose results aren't recorded yet: not to be
/// read as due again.
type InFlight = Arc<Mutex<HashSet<Uuid>>>;

fn lock(set: &InFlight) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
    set.lock().unwrap_or_else(PoisonError::into_inner)
}

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
    let slots = Arc::new(Semaphore::new(window));
    let in_flight = InFlight::default();
    let (results, outcomes) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record(
        service.clone(),
        provider.name(),
        leadership.clone(),
        ttl,
        outcomes,
        in_flight.clone(),
    ));
    // Looks are taken for a quarter of the window at least, not for each
    // text that finishes.
    let quarter = u32::try_from((window / 4).max(1)).unwrap_or(1);
    // Where the last full look ended: the next reads on from there.
    let mut cursor = None;
    loop {
        if held.borrow().is_none() || lock(&in_flight).len() >= 4 * window {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(poll) => continue,
            }
        }
        let mut permits = tokio::select! {
            () = shutdown.cancelled() => break,
            permits = slots.clone().acquire_many_owned(quarter) => permits?,
        };
        let free = u32::try_from(slots.available_permits()).unwrap_or(0);
        if free > 0
            && let Ok(more) = slots.clone().try_acquire_many_owned(free)
        {
            permits.merge(more);
        }
        let room = permits.num_permits();
        let skip = lock(&in_flight).clone();
        let due = match service.due_sms(&skip, cursor, room).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "reading queued text messages failed; will retry");
                Vec::new()
            }
        };
        let full = due.len() == room;
        cursor = due
            .last()
            .filter(|_| full)
            .map(|(message, _)| (message.next_attempt_at, message.id));
        for (message, outbound) in due {
            let Some(slot) = permits.split(1) else {
                break;
            };
            lock(&in_flight).insert(message.id);
            let (provider, results) = (provider.clone(), results.clone());
            tokio::spawn(async move {
                let result = provider.submit(&outbound).await;
                // Handed over before the slot frees: at shutdown, all slots
                // back means every result is with the recorder.
                let _ = results.send(SmsOutcome { message, result });
                drop(slot);
            });
        }
        drop(permits);
        if !full {
            // Caught up: look again after `poll`.
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
    // What is on its way is recorded if the lease still holds.
    let all = u32::try_from(window).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(5), slots.acquire_many(all)).await;
    drop(results);
    let _ = tokio::time::timeout(Duration::from_secs(5), recorder).await;
    Ok(())
}

/// Writes what the provider did, in batches, fenced by the lease, up to
/// [`RECORDERS`] transactions at once; then the texts may be read as due
/// again (those that must be tried again).
async fn record(
    service: Arc<TicketingService>,
    provider: &'static str,
    leadership: Arc<Leadership>,
    ttl: Duration,
    mut outcomes: mpsc::UnboundedReceiver<SmsOutcome>,
    in_flight: InFlight,
) {
    let held = leadership.watch();
    let mut writing = tokio::task::JoinSet::new();
    while let Some(first) = outcomes.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + FLUSH;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, outcomes.recv()).await {
                Ok(Some(outcome)) => batch.push(outcome),
                Ok(None) | Err(_) => break,
            }
        }
        while writing.len() >= RECORDERS {
            writing.join_next().await;
        }
        let current = held.borrow().clone();
        let (service, leadership, in_flight) =
            (service.clone(), leadership.clone(), in_flight.clone());
        writing.spawn(async move {
            let ids: Vec<Uuid> = batch.iter().map(|o| o.message.id).collect();
            match current {
                Some(grant) => match service.record_sms(&grant, ttl, provider, batch).await {
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
            let mut set = lock(&in_flight);
            for id in ids {
                set.remove(&id);
            }
        });
    }
    while writing.join_next().await.is_some() {}
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
        let mut held_back = Vec::new();
        match service.sms_receipts(&receipts).await {
            Ok(known) => {
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
            }
            // Kept unacknowledged and uncounted however long the database is
            // away: only a receipt for no known part is ever dropped.
            Err(error) => {
                tracing::warn!(%error, "recording delivery receipts failed; will retry");
                held_back.extend(
                    receipts
                        .into_iter()
                        .zip(acks)
                        .map(|(receipt, ack)| Report::Receipt { receipt, ack }),
                );
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
