//! The event bus: one topic exchange, routing keys `<service>.<entity>.<verb>`,
//! at-least-once delivery with a delivery limit and a dead-letter sink.
//!
//! Two backends with the same semantics: RabbitMQ through lapin (publisher
//! confirms, quorum queues, CloudEvents attributes in AMQP headers) and an
//! in-process one for the embedded mode and tests.

mod amqp;
mod memory;
mod topic;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use amqp::{AmqpBus, AmqpSettings};
pub use memory::MemoryBus;
pub use topic::topic_matches;

/// One event as it travels: CloudEvents attributes plus a protobuf payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// CloudEvents `id`; consumers de-duplicate on it.
    pub id: Uuid,
    /// CloudEvents `type`, which is also the routing key: `identity.customer.created`.
    pub kind: String,
    /// CloudEvents `source`: `/hotline/identity`.
    pub source: String,
    /// CloudEvents `subject`: usually the id of the entity the event is about.
    pub subject: Option<String>,
    pub time: DateTime<Utc>,
    /// The payload, a message from `proto/hotline/events/v1` (content type `application/protobuf`).
    pub data: Vec<u8>,
    /// W3C trace context of the change that produced the event.
    pub traceparent: Option<String>,
    /// How many times this event has been handed to a consumer before (0 on first delivery).
    pub redeliveries: u32,
}

impl Event {
    pub fn new(kind: impl Into<String>, source: impl Into<String>, data: Vec<u8>) -> Self {
        Self {
            id: Uuid::now_v7(),
            kind: kind.into(),
            source: source.into(),
            subject: None,
            time: Utc::now(),
            data,
            traceparent: None,
            redeliveries: 0,
        }
    }

    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
}

/// Who receives the events of a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fanout {
    /// One durable queue per consuming service: replicas compete, each event is
    /// handled by one of them (reporting, timelines, dispatch).
    Shared,
    /// One transient queue per process: every replica sees every event (local
    /// search indexes, in-memory cache invalidation). Events published while the
    /// replica is down are not kept for it; it rebuilds its state at start.
    EveryReplica,
}

/// What a consumer listens to.
#[derive(Clone, Debug)]
pub struct Subscription {
    /// `<consumer>.<purpose>`, e.g. `identity.timeline`; the queue's name.
    pub name: String,
    /// Routing-key patterns (`*` one word, `#` zero or more words).
    pub bindings: Vec<String>,
    pub fanout: Fanout,
}

/// Why a handler did not apply an event. Either way the event is redelivered
/// until the delivery limit, then dead-lettered.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct HandlerError(#[from] pub anyhow::Error);

#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError>;
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("broker connection failed: {0}")]
    Connection(String),
    #[error("broker did not confirm the publish of event {0}")]
    NotConfirmed(Uuid),
    #[error("broker error: {0}")]
    Broker(String),
}

/// Hands `event` to `handler` inside a span that continues the trace of the
/// change that produced it, and counts the outcome. Both backends deliver
/// through this.
pub(crate) async fn deliver(
    handler: &dyn EventHandler,
    event: &Event,
    consumer: &str,
) -> Result<(), HandlerError> {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "event",
        messaging.consumer = consumer,
        event.kind = %event.kind,
        event.id = %event.id,
        otel.kind = "consumer"
    );
    crate::telemetry::link_parent(&span, event.traceparent.as_deref());
    let outcome = handler.handle(event).instrument(span).await;
    let label = if outcome.is_ok() { "ok" } else { "failed" };
    crate::metrics::record_event_handled(consumer, &event.kind, label);
    outcome
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes one persistent event; returns once the broker has confirmed it.
    async fn publish(&self, event: &Event) -> Result<(), BusError>;

    /// Consumes `subscription` until `shutdown` is cancelled. An event is acked
    /// after `handler` returns `Ok`; on `Err` it is redelivered, and after the
    /// delivery limit it goes to the dead-letter queue. Returns once the event in
    /// hand (if any) is finished.
    async fn consume(
        &self,
        subscription: Subscription,
        handler: Arc<dyn EventHandler>,
        shutdown: CancellationToken,
    ) -> Result<(), BusError>;

    /// Whether the bus can take publishes now (for `/readyz`).
    async fn check(&self) -> Result<(), BusError>;
}
