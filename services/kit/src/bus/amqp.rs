//! The RabbitMQ backend, over lapin.
//!
//! - Topology: a durable topic exchange for events; `<exchange>.unroutable`, a
//!   durable queue keeping events that matched no binding (publishes are
//!   mandatory, and a returned event is parked there); a topic dead-letter
//!   exchange with `<dead_letter_exchange>.dead-letters` bound with `#`. Every
//!   declaration is passive first, so an exchange or queue that exists with other
//!   arguments (an operator's policy, an older release) is used as it is, never
//!   refused with PRECONDITION_FAILED.
//! - Queues carry no argument an operator may want to change: the delivery limit,
//!   the retry backoff and dead-lettering are the consumer's own (`settle`).
//! - Publishing: persistent, mandatory messages on a confirm-mode channel;
//!   CloudEvents attributes travel in `cloudEvents_*` headers (AMQP protocol
//!   binding, binary mode), the W3C trace context in `traceparent`. The
//!   connection is made on first use, not at start, so a service starts with the
//!   broker down; a broken connection is rebuilt lazily and the publish retried
//!   once. The queues of `declare`d subscriptions are declared on every new
//!   publishing connection, before its first publish.
//! - Consuming: `Fanout::Shared` uses a durable quorum queue named after the
//!   subscription; `Fanout::EveryReplica` a server-named exclusive queue. Events
//!   are handled one at a time and acked after the handler (or the dead-letter
//!   publish) succeeds. A lost connection is re-established with backoff until
//!   shutdown.

use std::fmt;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ErrorKind,
    ExchangeKind,
};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, warn};
use uuid::Uuid;

use super::{
    Backlog, Bus, BusError, DeadLetter, DeadLetterAction, DeadLetterFilter, Event, EventHandler,
    Fanout, RetryPolicy, Settlement, Subscription, UNROUTABLE, settle,
};

const CONTENT_TYPE: &str = "application/protobuf";
/// `messaging.system` in spans.
const SYSTEM: &str = "rabbitmq";
const SPEC_VERSION: &str = "1.0";
/// AMQP `delivery_mode` of a message the broker writes to disk.
const PERSISTENT: u8 = 2;
const REPLY_SUCCESS: u16 = 200;
/// How often a consumer measures its queue (`hotline_consumer_lag_messages`).
const BACKLOG_INTERVAL: Duration = Duration::from_secs(5);
/// Bounds a connection attempt, so a publish with the broker away fails in time.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds the wait for a publisher confirm (a blocked connection never sends one).
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Channel-level errors that a retry cannot fix: ACCESS_REFUSED, PRECONDITION_FAILED.
const FATAL_REPLY_CODES: [u16; 2] = [403, 406];
/// The most dead letters one `dead_letters` call looks at per queue.
const DEAD_LETTER_SCAN: u32 = 100_000;

/// Header names of the CloudEvents AMQP binding, the broker's and our own.
mod header {
    pub(super) const SPEC_VERSION: &str = "cloudEvents_specversion";
    pub(super) const ID: &str = "cloudEvents_id";
    pub(super) const SOURCE: &str = "cloudEvents_source";
    pub(super) const TYPE: &str = "cloudEvents_type";
    pub(super) const SUBJECT: &str = "cloudEvents_subject";
    pub(super) const TIME: &str = "cloudEvents_time";
    pub(super) const SEQUENCE: &str = "cloudEvents_sequence";
    pub(super) const TRACEPARENT: &str = "traceparent";
    /// Set by quorum queues on redelivery: how many times the message was returned.
    pub(super) const DELIVERY_COUNT: &str = "x-delivery-count";
    /// On a dead letter: the queue whose consumer gave up, why and when.
    pub(super) const DEAD_QUEUE: &str = "x-hotline-queue";
    pub(super) const DEAD_ERROR: &str = "x-hotline-error";
    pub(super) const DEAD_AT: &str = "x-hotline-failed-at";
}

/// Where and how to reach RabbitMQ.
#[derive(Clone)]
pub struct AmqpSettings {
    /// `amqp://user:password@host:5672/vhost` (`%2f` is the default vhost).
    pub url: String,
    /// The topic exchange events are published to: `hotline.events`.
    pub exchange: String,
    /// Where consumers put the events they gave up on: `hotline.dlx`.
    pub dead_letter_exchange: String,
    /// Unacked deliveries a consumer may hold at once.
    pub prefetch: u16,
    pub retry: RetryPolicy,
}

impl AmqpSettings {
    /// The queue that keeps the dead letters: `<dead_letter_exchange>.dead-letters`.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead-letters", self.dead_letter_exchange)
    }

    /// The queue that keeps events no binding matched: `<exchange>.unroutable`.
    pub fn unroutable_queue(&self) -> String {
        format!("{}.unroutable", self.exchange)
    }
}

impl Default for AmqpSettings {
    fn default() -> Self {
        Self {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            exchange: "hotline.events".to_owned(),
            dead_letter_exchange: "hotline.dlx".to_owned(),
            prefetch: 32,
            retry: RetryPolicy::default(),
        }
    }
}

impl fmt::Debug for AmqpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpSettings")
            .field("url", &crate::config::redact_url(&self.url))
            .field("exchange", &self.exchange)
            .field("dead_letter_exchange", &self.dead_letter_exchange)
            .field("prefetch", &self.prefetch)
            .field("retry", &self.retry)
            .finish()
    }
}

/// Event bus on RabbitMQ; clones share the publishing connection.
#[derive(Clone)]
pub struct AmqpBus {
    inner: Arc<Inner>,
}

struct Inner {
    settings: AmqpSettings,
    /// Subscriptions whose queues must exist before events are published.
    declared: StdMutex<Vec<Subscription>>,
    /// The publishing connection, made on first use and rebuilt when it breaks.
    publisher: Mutex<PublisherSlot>,
    /// Messages ready in the queue of each subscription consumed here, as its
    /// consumer last measured them (on its own connection: a per-replica queue
    /// is exclusive to it).
    consumed: StdMutex<std::collections::BTreeMap<String, u64>>,
}

#[derive(Default)]
struct PublisherSlot {
    current: Option<Arc<Publisher>>,
    generation: u64,
    /// How many of `Inner::declared` the current connection has declared.
    declared: usize,
}

struct Publisher {
    /// Lets a failed publish discard exactly the connection it used, not a newer one.
    generation: u64,
    connection: Connection,
    channel: Channel,
}

impl Publisher {
    fn is_usable(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

impl fmt::Debug for AmqpBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpBus")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

enum PublishFailure {
    Nacked,
    TimedOut,
    Broken(lapin::Error),
}

impl AmqpBus {
    /// A bus on `settings`; nothing is connected until the first publish or consume.
    pub fn new(settings: AmqpSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                declared: StdMutex::new(Vec::new()),
                publisher: Mutex::new(PublisherSlot::default()),
                consumed: StdMutex::default(),
            }),
        }
    }

    pub fn settings(&self) -> &AmqpSettings {
        &self.inner.settings
    }

    fn declared(&self) -> Vec<Subscription> {
        self.inner
            .declared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The current publishing connection, or a new one if there is none or it
    /// broke; either way with every declared subscription's queue in place.
    async fn publisher(&self) -> Result<Arc<Publisher>, BusError> {
        let mut slot = self.inner.publisher.lock().await;
        let declared = self.declared();
        if let Some(current) = slot.current.clone()
            && current.is_usable()
        {
            if slot.declared < declared.len() {
                for subscription in &declared[slot.declared..] {
                    declare_subscription(
                        &current.connection,
                        &current.channel,
                        &self.inner.settings.exchange,
                        subscription,
                    )
                    .await
                    .map_err(|error| BusError::Broker(format!("declaring a queue: {error}")))?;
                }
                slot.declared = declared.len();
            }
            return Ok(current);
        }
        slot.current = None;
        slot.generation += 1;
        let opened = open_publisher(&self.inner.settings, slot.generation, &declared).await;
        crate::metrics::set_dependency_up("rabbitmq", opened.is_ok());
        let publisher = Arc::new(opened?);
        slot.current = Some(Arc::clone(&publisher));
        slot.declared = declared.len();
        Ok(publisher)
    }

    async fn discard(&self, generation: u64) {
        let mut slot = self.inner.publisher.lock().await;
        if slot
            .current
            .as_ref()
            .is_some_and(|current| current.generation == generation)
        {
            slot.current = None;
        }
    }

    /// Waits for the confirms of a sent batch in order; returned (unroutable)
    /// events are parked. Says how many were confirmed before the first failure.
    async fn settle_batch(
        &self,
        publisher: &Publisher,
        sent: Vec<(
            &Event,
            BasicProperties,
            lapin::PublisherConfirm,
            tracing::Span,
        )>,
        stopped: Option<BusError>,
    ) -> (usize, Option<BusError>) {
        let mut confirmed = 0;
        // Each event's span ends once its confirm is in.
        for (event, properties, confirm, span) in sent {
            let outcome = match tokio::time::timeout(CONFIRM_TIMEOUT, confirm).await {
                Err(_elapsed) => Err(PublishFailure::TimedOut),
                Ok(Err(error)) => Err(PublishFailure::Broken(error)),
                Ok(Ok(Confirmation::Ack(Some(_returned)))) => {
                    self.park_unroutable(publisher, event, properties)
                        .instrument(span.clone())
                        .await
                }
                Ok(Ok(Confirmation::Ack(None))) => Ok(()),
                Ok(Ok(Confirmation::Nack(_) | Confirmation::NotRequested)) => {
                    Err(PublishFailure::Nacked)
                }
            };
            match outcome {
                Ok(()) => confirmed += 1,
                Err(failure) => {
                    super::record_failure(&span, failure.kind());
                    if !matches!(failure, PublishFailure::Nacked) {
                        self.discard(publisher.generation).await;
                    }
                    return (confirmed, Some(BusError::NotConfirmed(event.id)));
                }
            }
        }
        (confirmed, stopped)
    }

    /// Keeps an event the broker returned as unroutable in the unroutable queue.
    async fn park_unroutable(
        &self,
        publisher: &Publisher,
        event: &Event,
        properties: BasicProperties,
    ) -> Result<(), PublishFailure> {
        let settings = &self.inner.settings;
        let properties = with_dead_letter_headers(
            properties,
            UNROUTABLE,
            &format!("no queue is bound for {}", event.kind),
        );
        let queue = ShortString::from(settings.unroutable_queue());
        let confirmation = publish_confirmed(
            &publisher.channel,
            ShortString::from(""),
            queue,
            &event.data,
            properties,
        )
        .await?;
        if was_returned(&confirmation) {
            // The unroutable queue itself is gone: fail, the outbox keeps the event.
            return Err(PublishFailure::Nacked);
        }
        super::note_unroutable(event);
        Ok(())
    }

    /// One consuming connection: declare, bind, consume until shutdown or failure.
    async fn consume_session(
        &self,
        subscription: &Subscription,
        handler: &Arc<dyn EventHandler>,
        shutdown: &CancellationToken,
        established: &mut bool,
    ) -> Result<(), SessionError> {
        let settings = &self.inner.settings;
        let connection = connect(settings, &format!("hotline consumer {}", subscription.name))
            .await
            .map_err(|error| SessionError::Transient(error.to_string()))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|error| setup_error("opening a channel", &error))?;
        declare_topology(&connection, &channel, settings)
            .await
            .map_err(|error| setup_error("declaring the topology", &error))?;
        let queue = declare_subscription(&connection, &channel, &settings.exchange, subscription)
            .await
            .map_err(|error| setup_error("declaring the queue", &error))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|error| setup_error("enabling publisher confirms", &error))?;
        channel
            .basic_qos(settings.prefetch, BasicQosOptions::default())
            .await
            .map_err(|error| setup_error("setting the prefetch", &error))?;
        let tag = short(&format!("hotline-{}", Uuid::now_v7())).map_err(SessionError::Fatal)?;
        let mut consumer = channel
            .basic_consume(
                queue.clone(),
                tag.clone(),
                BasicConsumeOptions {
                    no_ack: false,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|error| setup_error("starting the consumer", &error))?;
        *established = true;
        info!(
            subscription = %subscription.name,
            queue = %queue,
            bindings = ?subscription.bindings,
            "consuming events from rabbitmq"
        );
        let context = DeliveryContext {
            subscription: &subscription.name,
            handler,
            channel: &channel,
            settings,
            shutdown,
        };
        let mut measure = tokio::time::interval(BACKLOG_INTERVAL);
        measure.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => None,
                _ = measure.tick() => {
                    self.measure(&connection, &subscription.name, queue.as_str()).await;
                    continue;
                }
                next = consumer.next() => Some(next),
            };
            let delivery = match next {
                None => {
                    stop_session(&connection, &channel, tag, &subscription.name).await;
                    return Ok(());
                }
                Some(Some(Ok(delivery))) => delivery,
                Some(Some(Err(error))) => {
                    return Err(SessionError::Transient(format!("consumer failed: {error}")));
                }
                Some(None) => {
                    return Err(SessionError::Transient(
                        "the broker cancelled the consumer".to_owned(),
                    ));
                }
            };
            context.handle(delivery).await.map_err(|error| {
                SessionError::Transient(format!("settling a delivery failed: {error}"))
            })?;
        }
    }

    /// One publish with its confirm: a broken connection is rebuilt and the
    /// publish retried once.
    async fn publish_with(&self, event: &Event, traceparent: Option<&str>) -> Result<(), BusError> {
        let exchange = short(&self.inner.settings.exchange)?;
        let routing_key = short(&event.kind)?;
        let properties = properties_for(event, traceparent)?;
        let mut retried = false;

        loop {
            let publisher = self.publisher().await?;
            let outcome = match publish_confirmed(
                &publisher.channel,
                exchange.clone(),
                routing_key.clone(),
                &event.data,
                properties.clone(),
            )
            .await
            {
                Ok(confirmation) if was_returned(&confirmation) => {
                    self.park_unroutable(&publisher, event, properties.clone())
                        .await
                }
                Ok(_) => Ok(()),
                Err(failure) => Err(failure),
            };
            let failure = match outcome {
                Ok(()) => return Ok(()),
                Err(failure) => failure,
            };
            match failure {
                PublishFailure::Nacked => return Err(BusError::NotConfirmed(event.id)),
                PublishFailure::TimedOut => {
                    warn!(event_id = %event.id, "no publisher confirm in time, dropping the channel");
                    self.discard(publisher.generation).await;
                    return Err(BusError::NotConfirmed(event.id));
                }
                PublishFailure::Broken(error) => {
                    self.discard(publisher.generation).await;
                    crate::metrics::set_dependency_up("rabbitmq", false);
                    if retried {
                        return Err(BusError::Broker(format!(
                            "publishing event {} failed: {error}",
                            event.id
                        )));
                    }
                    warn!(
                        event_id = %event.id,
                        error = %error,
                        "publish failed, reconnecting to rabbitmq and retrying once"
                    );
                    retried = true;
                }
            }
        }
    }

    /// Records how many messages wait in `queue`, for `backlog`.
    async fn measure(&self, connection: &Connection, subscription: &str, queue: &str) {
        match queue_length(connection, queue).await {
            Ok(ready) => {
                self.inner
                    .consumed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(subscription.to_owned(), u64::from(ready));
            }
            Err(error) => debug!(queue, error = %error, "measuring a consumed queue failed"),
        }
    }

    /// Publishes a dead letter's original message to where `letter` says it
    /// belongs. Returns whether the broker routed it.
    async fn replay(
        &self,
        channel: &Channel,
        letter: &DeadLetter,
        delivery: &Delivery,
    ) -> Result<bool, BusError> {
        let settings = &self.inner.settings;
        let (exchange, routing_key) = if letter.queue == UNROUTABLE {
            (short(&settings.exchange)?, short(&letter.event.kind)?)
        } else {
            (ShortString::from(""), short(&letter.queue)?)
        };
        let properties = without_dead_letter_headers(delivery.properties.clone());
        let confirmation =
            publish_confirmed(channel, exchange, routing_key, &delivery.data, properties)
                .await
                .map_err(|failure| BusError::Broker(failure.describe()))?;
        Ok(!was_returned(&confirmation))
    }
}

#[async_trait]
impl Bus for AmqpBus {
    fn declare(&self, subscriptions: &[Subscription]) {
        self.inner
            .declared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(
                subscriptions
                    .iter()
                    .filter(|subscription| subscription.fanout == Fanout::Shared)
                    .cloned(),
            );
    }

    async fn publish(&self, event: &Event) -> Result<(), BusError> {
        let (span, traceparent) = super::publish_span(SYSTEM, &self.inner.settings.exchange, event);
        let published = self
            .publish_with(event, traceparent.as_deref())
            .instrument(span.clone())
            .await;
        if let Err(error) = &published {
            super::record_failure(&span, error.kind());
        }
        published
    }

    /// Sends the whole batch on the publishing channel, then waits for the
    /// confirms in order: one round trip to the broker per batch instead of one
    /// per event. A broken channel or a missing confirm stops the batch there.
    async fn publish_batch(&self, events: &[Event]) -> (usize, Option<BusError>) {
        let publisher = match self.publisher().await {
            Ok(publisher) => publisher,
            Err(error) => return (0, Some(error)),
        };
        let exchange = match short(&self.inner.settings.exchange) {
            Ok(exchange) => exchange,
            Err(error) => return (0, Some(error)),
        };
        let mut sent = Vec::with_capacity(events.len());
        for event in events {
            let (span, traceparent) =
                super::publish_span(SYSTEM, &self.inner.settings.exchange, event);
            let prepared = short(&event.kind)
                .and_then(|key| Ok((key, properties_for(event, traceparent.as_deref())?)));
            let (routing_key, properties) = match prepared {
                Ok(prepared) => prepared,
                Err(error) => {
                    super::record_failure(&span, error.kind());
                    return self.settle_batch(&publisher, sent, Some(error)).await;
                }
            };
            let published = publisher
                .channel
                .basic_publish(
                    exchange.clone(),
                    routing_key,
                    BasicPublishOptions {
                        mandatory: true,
                        immediate: false,
                    },
                    &event.data,
                    properties.clone(),
                )
                .instrument(span.clone())
                .await;
            match published {
                Ok(confirm) => sent.push((event, properties, confirm, span)),
                Err(error) => {
                    super::record_failure(&span, "broker");
                    self.discard(publisher.generation).await;
                    crate::metrics::set_dependency_up("rabbitmq", false);
                    let error =
                        BusError::Broker(format!("publishing event {} failed: {error}", event.id));
                    return self.settle_batch(&publisher, sent, Some(error)).await;
                }
            }
        }
        self.settle_batch(&publisher, sent, None).await
    }
    async fn consume(
        &self,
        subscription: Subscription,
        handler: Arc<dyn EventHandler>,
        shutdown: CancellationToken,
    ) -> Result<(), BusError> {
        let mut backoff = BACKOFF_START;
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let mut established = false;
            let failure = match self
                .consume_session(&subscription, &handler, &shutdown, &mut established)
                .await
            {
                Ok(()) => return Ok(()),
                Err(SessionError::Fatal(error)) => {
                    error!(
                        subscription = %subscription.name,
                        error = %error,
                        "cannot consume from rabbitmq"
                    );
                    return Err(error);
                }
                Err(SessionError::Transient(failure)) => failure,
            };
            if established {
                backoff = BACKOFF_START;
            }
            warn!(
                subscription = %subscription.name,
                error = %failure,
                retry_in = ?backoff,
                "rabbitmq consumer lost its connection, reconnecting"
            );
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn check(&self) -> Result<(), BusError> {
        self.publisher().await.map(|_| ())
    }

    async fn backlog(&self) -> Result<Vec<Backlog>, BusError> {
        Ok(self
            .inner
            .consumed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(queue, ready)| Backlog {
                queue: queue.clone(),
                ready: *ready,
            })
            .collect())
    }

    async fn dead_letters(
        &self,
        action: DeadLetterAction,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<DeadLetter>, BusError> {
        let settings = &self.inner.settings;
        // A connection of its own, with the topology and a confirm-mode channel.
        let Publisher {
            connection,
            channel,
            ..
        } = open_publisher(settings, 0, &[]).await?;
        let mut selected = Vec::new();
        for queue in [settings.dead_letter_queue(), settings.unroutable_queue()] {
            // Only what is there now: a replayed letter that comes back is not met again.
            let waiting = queue_length(&connection, &queue)
                .await
                .map_err(|error| BusError::Broker(format!("inspecting {queue}: {error}")))?
                .min(DEAD_LETTER_SCAN);
            for _ in 0..waiting {
                let Some(message) = channel
                    .basic_get(short(&queue)?, BasicGetOptions { no_ack: false })
                    .await
                    .map_err(|error| BusError::Broker(format!("reading {queue}: {error}")))?
                else {
                    break;
                };
                let letter = dead_letter_of(&message.delivery);
                // Letters not taken stay unacked and go back when the channel closes.
                if !filter.matches(&letter) {
                    continue;
                }
                let settled = match action {
                    DeadLetterAction::List => false,
                    DeadLetterAction::Drop => true,
                    DeadLetterAction::Replay => {
                        let routed = self.replay(&channel, &letter, &message.delivery).await?;
                        if !routed {
                            warn!(event_id = %letter.event.id, queue = %letter.queue, "nowhere to replay the dead letter to; it stays");
                        }
                        routed
                    }
                };
                if settled {
                    message
                        .delivery
                        .ack(BasicAckOptions::default())
                        .await
                        .map_err(|error| BusError::Broker(format!("acking: {error}")))?;
                    selected.push(letter);
                } else if action == DeadLetterAction::List {
                    selected.push(letter);
                }
            }
        }
        if let Err(error) = connection.close(REPLY_SUCCESS, "OK".into()).await {
            debug!(error = %error, "closing the dead-letter connection failed");
        }
        Ok(selected)
    }

    async fn close(&self) {
        let current = self.inner.publisher.lock().await.current.take();
        if let Some(publisher) = current
            && let Err(error) = publisher.connection.close(REPLY_SUCCESS, "OK".into()).await
        {
            debug!(error = %error, "closing the rabbitmq connection failed");
        }
    }
}

enum SessionError {
    /// Retrying cannot help (bad names, access refused).
    Fatal(BusError),
    /// The connection or channel went away; reconnect.
    Transient(String),
}

fn setup_error(step: &str, error: &lapin::Error) -> SessionError {
    if let ErrorKind::ProtocolError(amqp) = error.kind()
        && FATAL_REPLY_CODES.contains(&amqp.get_id())
    {
        return SessionError::Fatal(BusError::Broker(format!("{step}: {error}")));
    }
    SessionError::Transient(format!("{step}: {error}"))
}

impl PublishFailure {
    /// `error.type` of a failed publish span.
    fn kind(&self) -> &'static str {
        match self {
            Self::Nacked => "nacked",
            Self::TimedOut => "timeout",
            Self::Broken(_) => "broker",
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Nacked => "the broker refused the message".to_owned(),
            Self::TimedOut => "no publisher confirm in time".to_owned(),
            Self::Broken(error) => error.to_string(),
        }
    }
}

/// What a consumer needs to settle one delivery.
struct DeliveryContext<'a> {
    subscription: &'a str,
    handler: &'a Arc<dyn EventHandler>,
    /// The consuming channel, in confirm mode for dead-letter publishes.
    channel: &'a Channel,
    settings: &'a AmqpSettings,
    shutdown: &'a CancellationToken,
}

impl DeliveryContext<'_> {
    /// Hands one delivery to the handler (with retries) and acks, requeues or
    /// dead-letters it. Errors only when the channel can't take the outcome; the
    /// unacked delivery then goes back to the queue with the channel.
    async fn handle(&self, delivery: Delivery) -> Result<(), String> {
        let mut event = match decode_event(&delivery) {
            Ok(event) => event,
            Err(reason) => {
                warn!(
                    subscription = %self.subscription,
                    routing_key = %delivery.routing_key,
                    reason = %reason,
                    "undecodable message; dead-lettering it"
                );
                self.bury(&delivery, &format!("undecodable: {reason}"))
                    .await?;
                return ack(&delivery).await;
            }
        };
        let settlement = settle(
            self.handler.as_ref(),
            &mut event,
            self.subscription,
            SYSTEM,
            &self.settings.retry,
            self.shutdown,
        )
        .await;
        match settlement {
            Settlement::Handled => ack(&delivery).await,
            Settlement::DeadLetter(error) => {
                self.bury(&delivery, &error).await?;
                ack(&delivery).await
            }
            Settlement::Requeue => delivery
                .nack(BasicNackOptions {
                    multiple: false,
                    requeue: true,
                })
                .await
                .map(|_| ())
                .map_err(|error| error.to_string()),
        }
    }

    /// Publishes the delivery, as it came, to the dead-letter exchange.
    async fn bury(&self, delivery: &Delivery, error: &str) -> Result<(), String> {
        let properties =
            with_dead_letter_headers(delivery.properties.clone(), self.subscription, error);
        let exchange = short(&self.settings.dead_letter_exchange).map_err(|e| e.to_string())?;
        let confirmation = publish_confirmed(
            self.channel,
            exchange,
            delivery.routing_key.clone(),
            &delivery.data,
            properties,
        )
        .await
        .map_err(|failure| format!("dead-lettering: {}", failure.describe()))?;
        if was_returned(&confirmation) {
            return Err("dead-lettering: the dead-letter queue is gone".to_owned());
        }
        Ok(())
    }
}

async fn ack(delivery: &Delivery) -> Result<(), String> {
    delivery
        .ack(BasicAckOptions::default())
        .await
        .map(|_| ())
        .map_err(|error| error.to_string())
}

/// Stops taking deliveries and closes the consumer's channel and connection.
/// Deliveries prefetched but not started go back to the queue with the channel.
async fn stop_session(
    connection: &Connection,
    channel: &Channel,
    tag: ShortString,
    subscription: &str,
) {
    if let Err(error) = channel
        .basic_cancel(tag, BasicCancelOptions::default())
        .await
    {
        debug!(subscription, error = %error, "cancelling the consumer failed");
    }
    if let Err(error) = channel.close(REPLY_SUCCESS, "OK".into()).await {
        debug!(subscription, error = %error, "closing the consumer channel failed");
    }
    if let Err(error) = connection.close(REPLY_SUCCESS, "OK".into()).await {
        debug!(subscription, error = %error, "closing the consumer connection failed");
    }
    info!(subscription, "rabbitmq consumer stopped");
}

async fn connect(settings: &AmqpSettings, name: &str) -> Result<Connection, BusError> {
    let properties =
        ConnectionProperties::default().with_connection_name(LongString::from(name.to_owned()));
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        Connection::connect(&settings.url, properties),
    )
    .await
    {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(BusError::Connection(format!(
            "{}: {error}",
            crate::config::redact_url(&settings.url)
        ))),
        Err(_elapsed) => Err(BusError::Connection(format!(
            "{}: timed out after {CONNECT_TIMEOUT:?}",
            crate::config::redact_url(&settings.url)
        ))),
    }
}

async fn open_publisher(
    settings: &AmqpSettings,
    generation: u64,
    declared: &[Subscription],
) -> Result<Publisher, BusError> {
    let connection = connect(settings, "hotline publisher").await?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|error| BusError::Connection(error.to_string()))?;
    declare_topology(&connection, &channel, settings)
        .await
        .map_err(|error| BusError::Broker(format!("declaring the topology: {error}")))?;
    for subscription in declared {
        declare_subscription(&connection, &channel, &settings.exchange, subscription)
            .await
            .map_err(|error| BusError::Broker(format!("declaring a queue: {error}")))?;
    }
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|error| BusError::Broker(format!("enabling publisher confirms: {error}")))?;
    info!(
        url = %crate::config::redact_url(&settings.url),
        exchange = %settings.exchange,
        generation,
        "connected to rabbitmq"
    );
    Ok(Publisher {
        generation,
        connection,
        channel,
    })
}

/// A mandatory, persistent publish, awaited until the broker confirms it. A
/// returned (unroutable) message comes back inside the confirmation.
async fn publish_confirmed(
    channel: &Channel,
    exchange: ShortString,
    routing_key: ShortString,
    payload: &[u8],
    properties: BasicProperties,
) -> Result<Confirmation, PublishFailure> {
    let confirm = channel
        .basic_publish(
            exchange,
            routing_key,
            BasicPublishOptions {
                mandatory: true,
                immediate: false,
            },
            payload,
            properties,
        )
        .await
        .map_err(PublishFailure::Broken)?;
    let confirmation = tokio::time::timeout(CONFIRM_TIMEOUT, confirm)
        .await
        .map_err(|_elapsed| PublishFailure::TimedOut)?
        .map_err(PublishFailure::Broken)?;
    match confirmation {
        Confirmation::Ack(returned) => Ok(Confirmation::Ack(returned)),
        // Every publishing channel is in confirm mode; anything else is no confirm.
        Confirmation::Nack(_) | Confirmation::NotRequested => Err(PublishFailure::Nacked),
    }
}

/// Whether the broker returned a mandatory message as unroutable.
fn was_returned(confirmation: &Confirmation) -> bool {
    matches!(confirmation, Confirmation::Ack(Some(_)))
}

/// Declares a durable exchange unless one of that name exists (whatever its arguments).
async fn ensure_exchange(connection: &Connection, name: &str) -> Result<(), lapin::Error> {
    let name = ShortString::try_new(name).map_err(|_too_long| name_too_long(name))?;
    let probe = connection.create_channel().await?;
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };
    let exists = probe
        .exchange_declare(
            name.clone(),
            ExchangeKind::Topic,
            passive,
            FieldTable::default(),
        )
        .await
        .is_ok();
    if exists {
        close_quietly(&probe).await;
        return Ok(());
    }
    // The failed passive declare closed the probe channel.
    let channel = connection.create_channel().await?;
    channel
        .exchange_declare(
            name,
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    close_quietly(&channel).await;
    Ok(())
}

/// Declares a durable queue of `queue_type` unless one of that name exists
/// (whatever its arguments: an operator's policy or an older release's).
async fn ensure_queue(
    connection: &Connection,
    name: &str,
    queue_type: &str,
) -> Result<(), lapin::Error> {
    if queue_length(connection, name).await.is_ok() {
        return Ok(());
    }
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), long_string(queue_type));
    let channel = connection.create_channel().await?;
    channel
        .queue_declare(
            ShortString::try_new(name).map_err(|_too_long| name_too_long(name))?,
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await?;
    close_quietly(&channel).await;
    Ok(())
}

/// Messages ready in an existing queue; an error if it does not exist.
async fn queue_length(connection: &Connection, name: &str) -> Result<u32, lapin::Error> {
    let probe = connection.create_channel().await?;
    let declared = probe
        .queue_declare(
            ShortString::try_new(name).map_err(|_too_long| name_too_long(name))?,
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    close_quietly(&probe).await;
    Ok(declared.message_count())
}

async fn close_quietly(channel: &Channel) {
    if let Err(error) = channel.close(REPLY_SUCCESS, "OK".into()).await {
        debug!(error = %error, "closing a declaration channel failed");
    }
}

/// The event exchange, the unroutable queue, the dead-letter exchange and its
/// queue; idempotent, so every connection does it. Dead letters and unroutable
/// events sit in classic queues: listing them returns them unacked, which a
/// quorum queue would count towards a delivery limit.
async fn declare_topology(
    connection: &Connection,
    channel: &Channel,
    settings: &AmqpSettings,
) -> Result<(), lapin::Error> {
    ensure_exchange(connection, &settings.exchange).await?;
    ensure_exchange(connection, &settings.dead_letter_exchange).await?;
    ensure_queue(connection, &settings.unroutable_queue(), "classic").await?;
    let dead_letter_queue = settings.dead_letter_queue();
    ensure_queue(connection, &dead_letter_queue, "classic").await?;
    channel
        .queue_bind(
            ShortString::try_new(dead_letter_queue.as_str())
                .map_err(|_too_long| name_too_long(&dead_letter_queue))?,
            ShortString::try_new(settings.dead_letter_exchange.as_str())
                .map_err(|_too_long| name_too_long(&settings.dead_letter_exchange))?,
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}

/// Declares the subscription's queue (a quorum queue named after it, or a
/// server-named exclusive one on `channel`) and its bindings; returns its name.
async fn declare_subscription(
    connection: &Connection,
    channel: &Channel,
    exchange: &str,
    subscription: &Subscription,
) -> Result<ShortString, lapin::Error> {
    let queue = match subscription.fanout {
        Fanout::Shared => {
            ensure_queue(connection, &subscription.name, "quorum").await?;
            ShortString::try_new(subscription.name.as_str())
                .map_err(|_too_long| name_too_long(&subscription.name))?
        }
        Fanout::EveryReplica => {
            let mut arguments = FieldTable::default();
            arguments.insert("x-queue-type".into(), long_string("classic"));
            let options = QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            };
            channel
                .queue_declare(ShortString::from(""), options, arguments)
                .await?
                .name()
                .clone()
        }
    };
    let exchange = ShortString::try_new(exchange).map_err(|_too_long| name_too_long(exchange))?;
    for pattern in &subscription.bindings {
        channel
            .queue_bind(
                queue.clone(),
                exchange.clone(),
                ShortString::try_new(pattern.as_str())
                    .map_err(|_too_long| name_too_long(pattern))?,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(queue)
}

fn name_too_long(name: &str) -> lapin::Error {
    lapin::Error::from(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("name longer than 255 bytes: {name}"),
    ))
}

/// An AMQP short string (exchange, queue, routing key), at most 255 bytes.
fn short(text: &str) -> Result<ShortString, BusError> {
    ShortString::try_new(text)
        .map_err(|_too_long| BusError::Broker(format!("name longer than 255 bytes: {text}")))
}

fn long_string(text: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(text))
}

/// The message's properties with where, why and when it was given up on.
fn with_dead_letter_headers(
    properties: BasicProperties,
    queue: &str,
    error: &str,
) -> BasicProperties {
    let mut headers = properties.headers().clone().unwrap_or_default();
    headers.insert(header::DEAD_QUEUE.into(), long_string(queue));
    headers.insert(header::DEAD_ERROR.into(), long_string(error));
    headers.insert(
        header::DEAD_AT.into(),
        long_string(&Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)),
    );
    properties.with_headers(headers)
}

/// The message's properties as they were before it was dead-lettered.
fn without_dead_letter_headers(properties: BasicProperties) -> BasicProperties {
    let mut kept = FieldTable::default();
    if let Some(headers) = properties.headers() {
        for (key, value) in headers.inner() {
            let name = key.as_str();
            if !name.starts_with("x-hotline-") && name != header::DELIVERY_COUNT {
                kept.insert(key.clone(), value.clone());
            }
        }
    }
    properties.with_headers(kept)
}

/// A dead letter as an operator sees it; a message that is not a CloudEvent
/// still shows, with a nil id and its routing key as its type.
fn dead_letter_of(delivery: &Delivery) -> DeadLetter {
    let no_headers = FieldTable::default();
    let headers = delivery
        .properties
        .headers()
        .as_ref()
        .unwrap_or(&no_headers);
    let error = header_string(headers, header::DEAD_ERROR).unwrap_or_default();
    let event = decode_event(delivery).unwrap_or_else(|reason| {
        let mut event = Event::new(delivery.routing_key.as_str(), "", delivery.data.clone());
        event.id = Uuid::nil();
        event.source = format!("(undecodable: {reason})");
        event
    });
    DeadLetter {
        queue: header_string(headers, header::DEAD_QUEUE).unwrap_or_else(|| UNROUTABLE.to_owned()),
        error,
        failed_at: header_string(headers, header::DEAD_AT)
            .and_then(|at| DateTime::parse_from_rfc3339(&at).ok())
            .map_or_else(Utc::now, |at| at.with_timezone(&Utc)),
        event,
    }
}

/// The AMQP properties and CloudEvents headers of one event.
/// `traceparent` is the publish span's, passed on to the consumer.
fn properties_for(event: &Event, traceparent: Option<&str>) -> Result<BasicProperties, BusError> {
    let id = event.id.to_string();
    let mut headers = FieldTable::default();
    headers.insert(header::SPEC_VERSION.into(), long_string(SPEC_VERSION));
    headers.insert(header::ID.into(), long_string(&id));
    headers.insert(header::SOURCE.into(), long_string(&event.source));
    headers.insert(header::TYPE.into(), long_string(&event.kind));
    if let Some(subject) = &event.subject {
        headers.insert(header::SUBJECT.into(), long_string(subject));
    }
    headers.insert(
        header::TIME.into(),
        long_string(&event.time.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    );
    if let Some(traceparent) = traceparent {
        headers.insert(header::TRACEPARENT.into(), long_string(traceparent));
    }
    if let Some(sequence) = event.sequence {
        // Zero-padded: the CloudEvents sequence extension compares as strings.
        headers.insert(
            header::SEQUENCE.into(),
            long_string(&format!("{sequence:020}")),
        );
    }
    Ok(BasicProperties::default()
        .with_content_type(CONTENT_TYPE.into())
        .with_delivery_mode(PERSISTENT)
        .with_message_id(short(&id)?)
        .with_type(short(&event.kind)?)
        .with_timestamp(u64::try_from(event.time.timestamp()).unwrap_or(0))
        .with_headers(headers))
}

/// Rebuilds an event from a delivery's properties and CloudEvents headers.
fn decode_event(delivery: &Delivery) -> Result<Event, String> {
    let properties = &delivery.properties;
    let no_headers = FieldTable::default();
    let headers = properties.headers().as_ref().unwrap_or(&no_headers);

    if let Some(version) = header_string(headers, header::SPEC_VERSION)
        && version != SPEC_VERSION
    {
        return Err(format!("unsupported cloudevents specversion {version}"));
    }
    let id = header_string(headers, header::ID)
        .or_else(|| properties.message_id().as_ref().map(ToString::to_string))
        .ok_or_else(|| format!("missing {}", header::ID))?;
    let id =
        Uuid::parse_str(&id).map_err(|error| format!("{} is not a uuid: {error}", header::ID))?;
    let kind = header_string(headers, header::TYPE)
        .or_else(|| properties.kind().as_ref().map(ToString::to_string))
        .ok_or_else(|| format!("missing {}", header::TYPE))?;
    let source = header_string(headers, header::SOURCE)
        .ok_or_else(|| format!("missing {}", header::SOURCE))?;
    let time = match header_string(headers, header::TIME) {
        Some(time) => DateTime::parse_from_rfc3339(&time)
            .map_err(|error| format!("{} is not rfc 3339: {error}", header::TIME))?
            .with_timezone(&Utc),
        None => properties
            .timestamp()
            .and_then(|seconds| i64::try_from(seconds).ok())
            .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
            .ok_or_else(|| format!("missing {}", header::TIME))?,
    };
    let redeliveries = headers
        .inner()
        .get(header::DELIVERY_COUNT)
        .and_then(header_count)
        .unwrap_or(u32::from(delivery.redelivered));
    Ok(Event {
        id,
        kind,
        source,
        subject: header_string(headers, header::SUBJECT),
        time,
        data: delivery.data.clone(),
        traceparent: header_string(headers, header::TRACEPARENT),
        sequence: header_string(headers, header::SEQUENCE).and_then(|s| s.parse().ok()),
        redeliveries,
    })
}

fn header_string(headers: &FieldTable, key: &str) -> Option<String> {
    let value = headers.inner().get(key)?;
    if let Some(text) = value.as_long_string() {
        return String::from_utf8(text.as_bytes().to_vec()).ok();
    }
    value.as_short_string().map(|text| text.as_str().to_owned())
}

/// A non-negative integer header of any AMQP integer width.
fn header_count(value: &AMQPValue) -> Option<u32> {
    value
        .as_long_long_int()
        .and_then(|n| u32::try_from(n).ok())
        .or_else(|| value.as_long_int().and_then(|n| u32::try_from(n).ok()))
        .or_else(|| value.as_long_uint())
        .or_else(|| value.as_short_int().and_then(|n| u32::try_from(n).ok()))
        .or_else(|| value.as_short_uint().map(u32::from))
        .or_else(|| {
            value
                .as_short_short_int()
                .and_then(|n| u32::try_from(n).ok())
        })
        .or_else(|| value.as_short_short_uint().map(u32::from))
        .or_else(|| value.as_timestamp().and_then(|n| u32::try_from(n).ok()))
}

#[cfg(test)]
mod tests {
    use lapin::message::Delivery;
    use lapin::types::{AMQPValue, FieldTable};

    use super::{decode_event, properties_for};
    use crate::bus::Event;

    fn delivery_of(event: &Event) -> Delivery {
        let mut delivery = Delivery::mock(
            1,
            "hotline.events".into(),
            event.kind.as_str().into(),
            false,
            event.data.clone(),
        );
        delivery.properties =
            properties_for(event, event.traceparent.as_deref()).expect("properties");
        delivery
    }

    #[test]
    fn headers_round_trip_every_attribute() {
        let mut event = Event::new(
            "ticketing.ticket.closed",
            "/hotline/ticketing",
            vec![1, 2, 3],
        )
        .with_subject("ticket-7");
        event.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
        event.sequence = Some(42);
        let decoded = decode_event(&delivery_of(&event)).expect("decodes");
        assert_eq!(decoded, event);
    }

    #[test]
    fn properties_follow_the_cloudevents_amqp_binding() {
        let event = Event::new("identity.customer.created", "/hotline/identity", vec![]);
        let properties = properties_for(&event, event.traceparent.as_deref()).expect("properties");
        assert_eq!(
            properties.content_type().as_ref().map(|c| c.as_str()),
            Some("application/protobuf")
        );
        assert_eq!(*properties.delivery_mode(), Some(2));
        assert_eq!(
            properties.message_id().as_ref().map(|m| m.to_string()),
            Some(event.id.to_string())
        );
        assert_eq!(
            properties.kind().as_ref().map(|k| k.as_str()),
            Some("identity.customer.created")
        );
        let headers = properties.headers().clone().expect("headers");
        for key in [
            "cloudEvents_specversion",
            "cloudEvents_id",
            "cloudEvents_source",
            "cloudEvents_type",
            "cloudEvents_time",
        ] {
            assert!(headers.contains_key(key), "missing {key}");
        }
        assert!(!headers.contains_key("cloudEvents_subject"));
        assert!(!headers.contains_key("traceparent"));
    }

    #[test]
    fn quorum_delivery_count_becomes_redeliveries() {
        let event = Event::new("routing.task.created", "/hotline/routing", vec![]);
        let mut delivery = delivery_of(&event);
        let mut headers = delivery.properties.headers().clone().expect("headers");
        headers.insert("x-delivery-count".into(), AMQPValue::LongLongInt(3));
        delivery.properties = delivery.properties.clone().with_headers(headers);
        assert_eq!(decode_event(&delivery).expect("decodes").redeliveries, 3);

        let mut redelivered = delivery_of(&event);
        redelivered.redelivered = true;
        assert_eq!(decode_event(&redelivered).expect("decodes").redeliveries, 1);
    }

    #[test]
    fn messages_without_cloudevents_headers_are_refused() {
        let mut delivery = Delivery::mock(1, "x".into(), "a.b.c".into(), false, vec![]);
        delivery.properties = delivery
            .properties
            .clone()
            .with_headers(FieldTable::default());
        assert!(decode_event(&delivery).is_err());

        let event = Event::new("routing.task.created", "/hotline/routing", vec![]);
        let mut bad_id = delivery_of(&event);
        let mut headers = bad_id.properties.headers().clone().expect("headers");
        headers.insert(
            "cloudEvents_id".into(),
            AMQPValue::LongString("nope".into()),
        );
        bad_id.properties = bad_id.properties.clone().with_headers(headers);
        assert!(decode_event(&bad_id).is_err());
    }
}
