//! The transactional outbox: an event row is written in the same transaction as
//! the change it announces, and a relay publishes it with broker confirms, so an
//! event is never lost and never announces a change that was rolled back.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, QueryOrder,
    QuerySelect, TransactionTrait, entity::prelude::*, sea_query::LockBehavior,
    sea_query::LockType,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    bus::{Bus, Event},
    metrics, telemetry,
};

/// Events relayed per transaction.
const BATCH: u64 = 100;

pub mod entity {
    use super::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox_event")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        #[sea_orm(unique)]
        pub id: Uuid,
        pub kind: String,
        pub source: String,
        pub subject: Option<String>,
        pub time: DateTime<Utc>,
        pub data: Vec<u8>,
        pub traceparent: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Writes events into a service's outbox and wakes its relay.
#[derive(Clone, Debug)]
pub struct Outbox {
    source: String,
    wake: Arc<Notify>,
}

impl Outbox {
    /// `service` names the CloudEvents source: `/hotline/<service>`.
    pub fn new(service: &str) -> Self {
        Self {
            source: format!("/hotline/{service}"),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Builds an event from this service, carrying the current trace context.
    pub fn event(&self, kind: &str, subject: impl Into<String>, data: Vec<u8>) -> Event {
        let mut event = Event::new(kind, self.source.clone(), data).with_subject(subject);
        event.traceparent = telemetry::current_traceparent();
        event
    }

    /// Stores `event` through `conn`, which should be the transaction making the change.
    pub async fn enqueue<C: ConnectionTrait>(&self, conn: &C, event: Event) -> Result<(), DbErr> {
        entity::ActiveModel {
            id: Set(event.id),
            kind: Set(event.kind),
            source: Set(event.source),
            subject: Set(event.subject),
            time: Set(event.time),
            data: Set(event.data),
            traceparent: Set(event.traceparent),
            ..Default::default()
        }
        .insert(conn)
        .await?;
        Ok(())
    }

    /// Tells the relay that committed events are waiting (call after commit).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Publishes committed events until `shutdown`; every replica may run it: on
    /// PostgreSQL rows are claimed with `FOR UPDATE SKIP LOCKED`.
    pub async fn relay(
        &self,
        db: DatabaseConnection,
        bus: Arc<dyn Bus>,
        poll_interval: Duration,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut failures = 0u32;
        loop {
            let outcome = relay_batch(&db, bus.as_ref()).await;
            let pause = match outcome {
                Ok(count) if count as u64 == BATCH => {
                    failures = 0;
                    continue;
                }
                Ok(_) => {
                    failures = 0;
                    poll_interval
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(
                        error = format!("{error:#}"),
                        failures,
                        "outbox relay failed; retrying"
                    );
                    poll_interval.saturating_mul(failures.min(30))
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => {
                    // Last pass so events committed by requests that just drained go out.
                    if let Err(error) = relay_batch(&db, bus.as_ref()).await {
                        tracing::warn!(error = format!("{error:#}"), "final outbox relay failed; events stay queued");
                    }
                    return Ok(());
                }
                () = self.wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// Publishes up to one batch in order, deleting each row once confirmed. Returns
/// how many were published.
async fn relay_batch(db: &DatabaseConnection, bus: &dyn Bus) -> anyhow::Result<usize> {
    let txn = db.begin().await?;
    let mut query = entity::Entity::find()
        .order_by_asc(entity::Column::Seq)
        .limit(BATCH);
    if db.get_database_backend() == DatabaseBackend::Postgres {
        query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let rows = query.all(&txn).await?;
    let mut published = Vec::with_capacity(rows.len());
    let mut failure = None;
    for row in rows {
        let event = Event {
            id: row.id,
            kind: row.kind,
            source: row.source,
            subject: row.subject,
            time: row.time,
            data: row.data,
            traceparent: row.traceparent,
            redeliveries: 0,
        };
        match bus.publish(&event).await {
            Ok(()) => {
                metrics::record_event_published(&event.kind);
                published.push(row.seq);
            }
            Err(error) => {
                // Keep order: stop at the first failure and retry from there.
                failure = Some(error);
                break;
            }
        }
    }
    if !published.is_empty() {
        entity::Entity::delete_many()
            .filter(entity::Column::Seq.is_in(published.iter().copied()))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    match failure {
        Some(error) => Err(error.into()),
        None => Ok(published.len()),
    }
}

/// Events still waiting in the outbox (for tests and `/readyz` diagnostics).
pub async fn pending(db: &DatabaseConnection) -> Result<u64, DbErr> {
    entity::Entity::find().count(db).await
}
