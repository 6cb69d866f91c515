//! The transactional outbox: an event row is written in the same transaction as
//! the change it announces, and a relay publishes it with broker confirms, so an
//! event is never lost and never announces a change that was rolled back.
//!
//! Order: one relay at a time publishes a service's outbox (on PostgreSQL the
//! replicas take turns under an advisory lock), in outbox order, stopping at the
//! first failure. Each event carries its outbox position as its CloudEvents
//! `sequence`, so a consumer can tell the newer of two events about one subject
//! even when retries or competing consumers hand them over out of order.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, QueryOrder,
    QuerySelect, Statement, TransactionTrait, entity::prelude::*,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    bus::{Bus, Event},
    lease::{FENCED, FencedWrite, timestamp_json},
    metrics, telemetry,
};
use base64::{Engine, engine::general_purpose::STANDARD};

/// Events relayed per transaction (sent to the broker before their confirms are awaited).
const BATCH: u64 = 500;

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

/// Rows per insert statement, well under the databases' bind-parameter limits.
const ENQUEUE_CHUNK: usize = 500;

fn row(event: Event) -> entity::ActiveModel {
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
        row(event).insert(conn).await?;
        Ok(())
    }

    /// Stores `events` in this order with one statement per few hundred (for
    /// changes made in batches).
    pub async fn enqueue_many<C: ConnectionTrait>(
        &self,
        conn: &C,
        events: Vec<Event>,
    ) -> Result<(), DbErr> {
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            let chunk: Vec<_> = events.by_ref().take(ENQUEUE_CHUNK).map(row).collect();
            entity::Entity::insert_many(chunk)
                .exec_without_returning(conn)
                .await?;
        }
        Ok(())
    }

    /// [`Self::enqueue_many`] as a part of a fenced write (PostgreSQL). The
    /// payload travels base64-encoded in the write's JSON.
    pub fn enqueue_fenced(&self, write: &mut FencedWrite, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let rows = events
            .into_iter()
            .map(|event| {
                serde_json::json!({
                    "id": event.id,
                    "kind": event.kind,
                    "source": event.source,
                    "subject": event.subject,
                    "time": timestamp_json(&event.time),
                    "data": STANDARD.encode(&event.data),
                    "traceparent": event.traceparent,
                })
            })
            .collect();
        let rows = write.bind(serde_json::Value::Array(rows));
        write.part(format!(
            "INSERT INTO outbox_event (id, kind, source, subject, \"time\", data, traceparent) \
             SELECT id, kind, source, subject, \"time\", decode(data, 'base64'), traceparent \
             FROM ROWS FROM (jsonb_to_recordset({rows}::jsonb) AS (id uuid, kind text, \
               source text, subject text, \"time\" timestamptz, data text, traceparent text)) \
             WITH ORDINALITY AS e(id, kind, source, subject, \"time\", data, traceparent, ord) \
             WHERE {FENCED} ORDER BY ord"
        ));
    }

    /// Tells the relay that committed events are waiting (call after commit).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Publishes committed events until `shutdown`; every replica may run it: on
    /// PostgreSQL one replica at a time holds the relay's advisory lock.
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
                Ok(Relayed::Batch(count)) if count as u64 == BATCH => {
                    failures = 0;
                    continue;
                }
                Ok(Relayed::Batch(_)) => {
                    failures = 0;
                    metrics::set_outbox_backlog(&self.source, 0, Duration::ZERO);
                    poll_interval
                }
                Ok(Relayed::OtherReplica) => poll_interval,
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(
                        error = format!("{error:#}"),
                        failures,
                        "outbox relay failed; events wait in the outbox"
                    );
                    if let Ok((waiting, oldest)) = backlog(&db).await {
                        metrics::set_outbox_backlog(&self.source, waiting, oldest);
                    }
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

enum Relayed {
    /// This many events were published.
    Batch(usize),
    /// Another replica is relaying; publishing beside it would mix up the order.
    OtherReplica,
}

/// Publishes up to one batch in order, deleting each row once confirmed.
async fn relay_batch(db: &DatabaseConnection, bus: &dyn Bus) -> anyhow::Result<Relayed> {
    let txn = db.begin().await?;
    if db.get_database_backend() == DatabaseBackend::Postgres {
        // Held until the transaction ends; the key is per schema, i.e. per service.
        let row = txn
            .query_one_raw(Statement::from_string(
                DatabaseBackend::Postgres,
                "SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.outbox_relay')) AS locked",
            ))
            .await?;
        let locked: bool = match row {
            Some(row) => row.try_get("", "locked")?,
            None => false,
        };
        if !locked {
            txn.rollback().await?;
            return Ok(Relayed::OtherReplica);
        }
    }
    let rows = entity::Entity::find()
        .order_by_asc(entity::Column::Seq)
        .limit(BATCH)
        .all(&txn)
        .await?;
    let events: Vec<Event> = rows
        .into_iter()
        .map(|row| Event {
            id: row.id,
            kind: row.kind,
            source: row.source,
            subject: row.subject,
            time: row.time,
            data: row.data,
            traceparent: row.traceparent,
            sequence: u64::try_from(row.seq).ok(),
            redeliveries: 0,
        })
        .collect();
    // In order; a failure stops the batch there, to be retried from it.
    let (confirmed, failure) = bus.publish_batch(&events).await;
    let published: Vec<i64> = events
        .iter()
        .take(confirmed)
        .map(|event| {
            metrics::record_event_published(&event.kind);
            event
                .sequence
                .and_then(|seq| i64::try_from(seq).ok())
                .unwrap_or_default()
        })
        .collect();
    if !published.is_empty() {
        entity::Entity::delete_many()
            .filter(entity::Column::Seq.is_in(published.iter().copied()))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    match failure {
        Some(error) => Err(error.into()),
        None => Ok(Relayed::Batch(published.len())),
    }
}

/// Events still waiting in the outbox (for tests and the backlog metric).
pub async fn pending(db: &DatabaseConnection) -> Result<u64, DbErr> {
    entity::Entity::find().count(db).await
}

/// Events waiting, and how long ago the oldest was written.
async fn backlog(db: &DatabaseConnection) -> Result<(u64, Duration), DbErr> {
    let waiting = pending(db).await?;
    let oldest = entity::Entity::find()
        .order_by_asc(entity::Column::Seq)
        .one(db)
        .await?
        .map(|row| (Utc::now() - row.time).to_std().unwrap_or_default())
        .unwrap_or_default();
    Ok((waiting, oldest))
}
