//! `ticketing.webhooks`: the lease holder delivers what any replica queued,
//! each endpoint in a task of its own (at most `concurrency` at once), so a
//! slow or dead partner holds up only its own deliveries.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use hotline_kit::lease::Leadership;
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    service::{Fired, TicketingService},
    webhooks::Sender,
};

pub const LEASE: &str = "ticketing.webhooks";

/// Deliveries read per poll at most.
const BATCH: u64 = 1000;

pub struct Settings {
    pub poll: Duration,
    pub ttl: Duration,
    pub concurrency: usize,
}

pub async fn run(
    service: Arc<TicketingService>,
    sender: Arc<Sender>,
    leadership: Arc<Leadership>,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let held = leadership.watch();
    let busy: Arc<Mutex<HashSet<Uuid>>> = Arc::default();
    let room = Arc::new(Semaphore::new(settings.concurrency));
    let mut running = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => {
                running.shutdown().await;
                return Ok(());
            }
            () = tokio::time::sleep(settings.poll) => {}
        }
        while let Some(ended) = running.try_join_next() {
            match ended {
                Ok((grant, Ok(Fired::Lost))) => leadership.lost(&grant),
                Ok((_, Ok(_))) => {}
                Ok((_, Err(error))) => {
                    tracing::warn!(%error, "delivering webhooks failed; will retry");
                }
                Err(error) => tracing::error!(%error, "a webhook delivery task ended abnormally"),
            }
        }
        let Some(grant) = held.borrow().clone() else {
            continue;
        };
        let taken = busy.lock().map(|b| b.clone()).unwrap_or_default();
        let due = match service.due_webhooks(&taken, BATCH).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "reading due webhooks failed; will retry");
                continue;
            }
        };
        for (endpoint, deliveries) in due {
            let Ok(permit) = room.clone().try_acquire_owned() else {
                break;
            };
            if let Ok(mut busy) = busy.lock() {
                busy.insert(endpoint.id);
            }
            let (service, sender, busy, grant) =
                (service.clone(), sender.clone(), busy.clone(), grant.clone());
            let ttl = settings.ttl;
            running.spawn(async move {
                let id = endpoint.id;
                let result = service
                    .deliver(&grant, ttl, &sender, endpoint, deliveries)
                    .await;
                if let Ok(mut busy) = busy.lock() {
                    busy.remove(&id);
                }
                drop(permit);
                (grant, result)
            });
        }
    }
}
