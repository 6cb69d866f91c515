//! The event bus: one topic exchange, routing keys `<service>.<entity>.<verb>`,
//! at-least-once delivery, retries with backoff, and dead letters that operators
//! list, replay and drop.
//!
//! Two backends with the same semantics: RabbitMQ through lapin (publisher
//! confirms, mandatory publishes, quorum queues, CloudEvents attributes in AMQP
//! headers) and an in-process one for the embedded mode and tests, which spools
//! what it holds to disk at shutdown and takes it back at start.
//!
//! What a change on a live broker cannot break: queues carry no argument an
//! operator may want to change. Retries, the delivery limit and dead-lettering
//! are the consumer's own work (`settle`), so changing `bus.delivery_limit`
//! needs a restart, never a queue redeclaration.

mod amqp;
mod memory;
mod retry;
mod topic;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use amqp::{AmqpBus, AmqpSettings};
pub use memory::MemoryBus;
pub use retry::RetryPolicy;
pub(crate) use retry::{Settlement, settle};
pub use topic::topic_matches;

/// Where an event that matched no queue is kept, as `DeadLetter::queue` shows it.
pub const UNROUTABLE: &str = "(unroutable)";

/// Logs an event no queue is bound for: a warning for the first of each kind
/// (a missing consumer queue is worth an operator's look), then only the
/// `events_unroutable_total` metric — a kind nobody consumes yet would
/// otherwise flood the log.
pub(crate) fn note_unroutable(event: &Event) {
    use std::{
        collections::HashSet,
        sync::{Mutex, OnceLock, PoisonError},
    };
    static WARNED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    crate::metrics::record_event_unroutable(&event.kind);
    let first = WARNED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(event.kind.clone());
    if first {
        tracing::warn!(event_id = %event.id, kind = %event.kind, "no queue is bound for the event; keeping it as unroutable (later ones of this kind are only counted)");
    } else {
        tracing::debug!(event_id = %event.id, kind = %event.kind, "unroutable event kept");
    }
}

/// One event as it travels: CloudEvents attributes plus a protobuf payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// CloudEvents `sequence`: the publishing service's outbox position. For one
    /// subject a higher sequence is a later change, so a consumer that meets
    /// events out of order can tell which is newer.
    pub sequence: Option<u64>,
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
            sequence: None,
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

/// Why a handler did not apply an event. The event is retried with backoff
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
    #[error("event spool: {0}")]
    Spool(String),
}

impl BusError {
    /// `error.type` of a failed publish span.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connection(_) => "connection",
            Self::NotConfirmed(_) => "not_confirmed",
            Self::Broker(_) => "broker",
            Self::Spool(_) => "spool",
        }
    }
}

/// An event a consumer gave up on (or that matched no queue), kept for an operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The queue whose consumer failed, or `UNROUTABLE`.
    pub queue: String,
    /// The last handler error.
    pub error: String,
    pub failed_at: DateTime<Utc>,
    pub event: Event,
}

/// What `hotline events dead-letters` does to the letters a filter selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadLetterAction {
    /// Show them; they stay.
    List,
    /// Hand them back to the queue they failed in (unroutable ones: publish them
    /// again, now that a queue may be bound), then forget them.
    Replay,
    /// Forget them.
    Drop,
}

/// Which dead letters an action applies to: all, or those of one queue, or
/// those with the given event ids.
#[derive(Clone, Debug, Default)]
pub struct DeadLetterFilter {
    pub queue: Option<String>,
    pub ids: Vec<Uuid>,
}

impl DeadLetterFilter {
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        self.queue
            .as_ref()
            .is_none_or(|queue| *queue == letter.queue)
            && (self.ids.is_empty() || self.ids.contains(&letter.event.id))
    }
}

/// The exchange name the in-process bus reports in its spans unless told another.
pub const DEFAULT_EXCHANGE: &str = "hotline.events";

/// `messaging.system` of the in-process bus (RabbitMQ's is `rabbitmq`).
pub const IN_PROCESS: &str = "in_process";

/// What a messaging span stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    /// A producer span: one event sent to the exchange.
    Publish,
    /// A consumer span: one delivery of an event to a handler.
    Process,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Process => "process",
        }
    }

    /// `messaging.operation.type`.
    fn kind(self) -> &'static str {
        match self {
            Self::Publish => "send",
            Self::Process => "process",
        }
    }

    fn span_kind(self) -> &'static str {
        match self {
            Self::Publish => "producer",
            Self::Process => "consumer",
        }
    }
}

/// The span of one publish (`publish <exchange>`, a child of the change that
/// produced the event: its context is what the message carries) or of one
/// delivery (`process <queue>`, a child of the publish).
pub(crate) fn messaging_span(
    operation: Operation,
    system: &'static str,
    destination: &str,
    event: &Event,
) -> tracing::Span {
    use opentelemetry_semantic_conventions::attribute as semconv;
    let redeliveries = (operation == Operation::Process).then_some(event.redeliveries);
    let span = tracing::info_span!(
        "messaging",
        otel.name = format!("{} {destination}", operation.name()),
        otel.kind = operation.span_kind(),
        otel.status_code = tracing::field::Empty,
        { semconv::MESSAGING_SYSTEM } = system,
        { semconv::MESSAGING_OPERATION_TYPE } = operation.kind(),
        { semconv::MESSAGING_OPERATION_NAME } = operation.name(),
        { semconv::MESSAGING_DESTINATION_NAME } = destination,
        { semconv::MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY } = %event.kind,
        { semconv::MESSAGING_MESSAGE_ID } = %event.id,
        { semconv::MESSAGING_MESSAGE_BODY_SIZE } = event.data.len(),
        hotline.event.redeliveries = redeliveries,
        { semconv::ERROR_TYPE } = tracing::field::Empty,
    );
    crate::telemetry::link_parent(&span, event.traceparent.as_deref());
    span
}

/// Marks a publish or process span failed, with the kind of failure.
pub(crate) fn record_failure(span: &tracing::Span, kind: &str) {
    span.record("otel.status_code", "ERROR");
    span.record(
        opentelemetry_semantic_conventions::attribute::ERROR_TYPE,
        kind,
    );
}

/// A publish span, and the `traceparent` the message published in it carries
/// (the event's own when nothing traces).
pub(crate) fn publish_span(
    system: &'static str,
    exchange: &str,
    event: &Event,
) -> (tracing::Span, Option<String>) {
    let span = messaging_span(Operation::Publish, system, exchange, event);
    let traceparent = span
        .in_scope(crate::telemetry::current_traceparent)
        .or_else(|| event.traceparent.clone());
    (span, traceparent)
}

/// Hands `event` to `handler` inside its `process` span and counts the
/// outcome. Both backends deliver through this.
pub(crate) async fn deliver(
    handler: &dyn EventHandler,
    event: &Event,
    consumer: &str,
    system: &'static str,
) -> Result<(), HandlerError> {
    use tracing::Instrument;
    let span = messaging_span(Operation::Process, system, consumer, event);
    let outcome = handler.handle(event).instrument(span.clone()).await;
    let label = if outcome.is_ok() { "ok" } else { "failed" };
    if outcome.is_err() {
        record_failure(&span, "handler_failed");
    }
    crate::metrics::record_event_handled(consumer, &event.kind, label);
    outcome
}

/// Messages waiting in one consumed queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backlog {
    /// The subscription's name (the queue's, for a shared subscription).
    pub queue: String,
    /// Published and not yet handed to a consumer. In-flight messages (up to
    /// the prefetch per consumer) are not counted: AMQP reports ready ones only.
    pub ready: u64,
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Makes the queues of these `Fanout::Shared` subscriptions exist before any
    /// event is published (now, or on the next connection to the broker), so
    /// events published before their consumer first starts are kept.
    fn declare(&self, subscriptions: &[Subscription]);

    /// Publishes one persistent event; returns once the broker has confirmed it.
    /// An event no queue is bound for is kept as an `UNROUTABLE` dead letter.
    async fn publish(&self, event: &Event) -> Result<(), BusError>;

    /// Publishes `events` in order and says how many, from the first, the
    /// broker confirmed, with the error that stopped the rest. A backend may
    /// send them all before it waits for confirms (one round trip for the
    /// batch); events after a failed one may then reach the broker too, and
    /// come again when the batch is retried: consumers drop them by id.
    async fn publish_batch(&self, events: &[Event]) -> (usize, Option<BusError>) {
        for (published, event) in events.iter().enumerate() {
            if let Err(error) = self.publish(event).await {
                return (published, Some(error));
            }
        }
        (events.len(), None)
    }

    /// Consumes `subscription` until `shutdown` is cancelled. An event is acked
    /// after `handler` returns `Ok`; on `Err` it is retried with backoff, and
    /// after the delivery limit it becomes a dead letter. Returns once the event
    /// in hand (if any) is settled: an event whose retries are cut short by
    /// shutdown goes back to its queue.
    async fn consume(
        &self,
        subscription: Subscription,
        handler: Arc<dyn EventHandler>,
        shutdown: CancellationToken,
    ) -> Result<(), BusError>;

    /// Whether the broker takes publishes now (for logs and metrics; a broker
    /// outage delays events, it does not make a service unready).
    async fn check(&self) -> Result<(), BusError>;

    /// Messages ready in each queue this process consumes (the consumer lag
    /// metric). The broker is asked for its count; the age of the oldest
    /// message is not something AMQP 0-9-1 reports.
    async fn backlog(&self) -> Result<Vec<Backlog>, BusError>;

    /// Lists, replays or drops the dead letters `filter` selects; returns them.
    async fn dead_letters(
        &self,
        action: DeadLetterAction,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<DeadLetter>, BusError>;

    /// Ends the bus's work after every consumer and the outbox relay stopped:
    /// the broker connection closes; the in-process bus spools what it holds.
    async fn close(&self);
}
