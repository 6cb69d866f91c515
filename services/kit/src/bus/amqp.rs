//! The RabbitMQ backend, over lapin.
//!
//! - Topology: a durable topic exchange for events, a topic dead-letter exchange
//!   and a quorum queue `<dead_letter_exchange>.dead-letters` bound with `#` that
//!   keeps every dead letter for inspection.
//! - Publishing: persistent messages on a confirm-mode channel; CloudEvents
//!   attributes travel in `cloudEvents_*` headers (AMQP protocol binding, binary
//!   mode), the W3C trace context in `traceparent`. A broken connection is rebuilt
//!   lazily and the publish retried once.
//! - Consuming: `Fanout::Shared` uses a durable quorum queue named after the
//!   subscription; `Fanout::EveryReplica` a server-named exclusive queue. Manual
//!   acks; a failed handler nacks with requeue until the event has been delivered
//!   `delivery_limit` times, then rejects it to the dead-letter exchange (the
//!   quorum queue's own `x-delivery-limit` is the backstop for consumers that die
//!   mid-event). A lost connection is re-established with backoff until shutdown.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, BasicRejectOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ErrorKind, ExchangeKind};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};
use uuid::Uuid;

use super::{Bus, BusError, Event, EventHandler, Fanout, Subscription};

const CONTENT_TYPE: &str = "application/protobuf";
const SPEC_VERSION: &str = "1.0";
/// AMQP `delivery_mode` of a message the broker writes to disk.
const PERSISTENT: u8 = 2;
const REPLY_SUCCESS: u16 = 200;
/// Bounds a connection attempt, so `check` answers a readiness probe in time.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Bounds the wait for a publisher confirm (a blocked connection never sends one).
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Channel-level errors that a retry cannot fix: ACCESS_REFUSED, PRECONDITION_FAILED
/// (e.g. a queue that exists with other arguments).
const FATAL_REPLY_CODES: [u16; 2] = [403, 406];

/// Header names of the CloudEvents AMQP binding and the broker's own headers.
mod header {
    pub(super) const SPEC_VERSION: &str = "cloudEvents_specversion";
    pub(super) const ID: &str = "cloudEvents_id";
    pub(super) const SOURCE: &str = "cloudEvents_source";
    pub(super) const TYPE: &str = "cloudEvents_type";
    pub(super) const SUBJECT: &str = "cloudEvents_subject";
    pub(super) const TIME: &str = "cloudEvents_time";
    pub(super) const TRACEPARENT: &str = "traceparent";
    /// Set by quorum queues on redelivery: how many times the message was returned.
    pub(super) const DELIVERY_COUNT: &str = "x-delivery-count";
}

/// Where and how to reach RabbitMQ.
#[derive(Clone)]
pub struct AmqpSettings {
    /// `amqp://user:password@host:5672/vhost` (`%2f` is the default vhost).
    pub url: String,
    /// The topic exchange events are published to: `hotline.events`.
    pub exchange: String,
    /// Where rejected and expired messages go: `hotline.dlx`.
    pub dead_letter_exchange: String,
    /// Unacked deliveries a consumer may hold at once.
    pub prefetch: u16,
    /// How many times an event is handed to a handler before it is dead-lettered.
    pub delivery_limit: u32,
    /// Sets `x-expires` on the queues this bus declares (tests use it so their
    /// queues vanish); `None` in production.
    pub queue_expires: Option<Duration>,
    /// Put before every queue name; empty in production, unique per test run
    /// so parallel tests on one broker never share a queue.
    pub queue_prefix: String,
}

impl AmqpSettings {
    /// The quorum queue that keeps the dead letters: `<dead_letter_exchange>.dead-letters`.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead-letters", self.dead_letter_exchange)
    }
}

impl Default for AmqpSettings {
    fn default() -> Self {
        Self {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            exchange: "hotline.events".to_owned(),
            dead_letter_exchange: "hotline.dlx".to_owned(),
            prefetch: 32,
            delivery_limit: 5,
            queue_expires: None,
            queue_prefix: String::new(),
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
            .field("delivery_limit", &self.delivery_limit)
            .field("queue_expires", &self.queue_expires)
            .finish()
    }
}

/// Hides the credentials of an AMQP URL: `amqp://***@host:5672/%2f`.
/// Event bus on RabbitMQ; clones share the publishing connection.
#[derive(Clone)]
pub struct AmqpBus {
    inner: Arc<Inner>,
}

struct Inner {
    settings: AmqpSettings,
    /// The publishing connection, rebuilt lazily when it breaks.
    publisher: Mutex<PublisherSlot>,
}

#[derive(Default)]
struct PublisherSlot {
    current: Option<Arc<Publisher>>,
    generation: u64,
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
    /// Connects and declares the exchange, the dead-letter exchange and the
    /// dead-letter queue.
    pub async fn connect(settings: AmqpSettings) -> Result<Self, BusError> {
        let bus = Self {
            inner: Arc::new(Inner {
                settings,
                publisher: Mutex::new(PublisherSlot::default()),
            }),
        };
        bus.publisher().await?;
        Ok(bus)
    }

    pub fn settings(&self) -> &AmqpSettings {
        &self.inner.settings
    }

    /// Closes the publishing connection (consumers close their own when their
    /// shutdown token is cancelled). A later publish reconnects.
    pub async fn close(&self) {
        let current = self.inner.publisher.lock().await.current.take();
        if let Some(publisher) = current
            && let Err(error) = publisher.connection.close(REPLY_SUCCESS, "OK".into()).await
        {
            debug!(error = %error, "closing the rabbitmq connection failed");
        }
    }

    /// The current publishing connection, or a new one if there is none or it broke.
    async fn publisher(&self) -> Result<Arc<Publisher>, BusError> {
        let mut slot = self.inner.publisher.lock().await;
        if let Some(current) = slot.current.as_ref()
            && current.is_usable()
        {
            return Ok(Arc::clone(current));
        }
        slot.current = None;
        slot.generation += 1;
        let publisher = Arc::new(open_publisher(&self.inner.settings, slot.generation).await?);
        slot.current = Some(Arc::clone(&publisher));
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
        declare_topology(&channel, settings)
            .await
            .map_err(|error| setup_error("declaring the topology", &error))?;
        channel
            .basic_qos(settings.prefetch, BasicQosOptions::default())
            .await
            .map_err(|error| setup_error("setting the prefetch", &error))?;
        let queue = declare_subscription_queue(&channel, settings, subscription).await?;
        let exchange = short(&settings.exchange).map_err(SessionError::Fatal)?;
        for pattern in &subscription.bindings {
            let pattern = short(pattern).map_err(SessionError::Fatal)?;
            channel
                .queue_bind(
                    queue.clone(),
                    exchange.clone(),
                    pattern,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|error| setup_error("binding the queue", &error))?;
        }
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

        // A per-replica queue is classic and carries no delivery count, but it is
        // exclusive to this connection, so every redelivery comes back here.
        let mut local_attempts = match subscription.fanout {
            Fanout::Shared => None,
            Fanout::EveryReplica => Some(HashMap::new()),
        };
        let context = DeliveryContext {
            subscription: &subscription.name,
            handler,
            delivery_limit: settings.delivery_limit.max(1),
        };
        loop {
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => None,
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
            context
                .handle(delivery, local_attempts.as_mut())
                .await
                .map_err(|error| {
                    SessionError::Transient(format!("acknowledging a delivery failed: {error}"))
                })?;
        }
    }
}

#[async_trait]
impl Bus for AmqpBus {
    async fn publish(&self, event: &Event) -> Result<(), BusError> {
        let exchange = short(&self.inner.settings.exchange)?;
        let routing_key = short(&event.kind)?;
        let properties = properties_for(event)?;
        let mut retried = false;
        loop {
            let publisher = self.publisher().await?;
            let failure = match publish_once(
                &publisher,
                exchange.clone(),
                routing_key.clone(),
                &event.data,
                properties.clone(),
            )
            .await
            {
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
}

enum SessionError {
    /// Retrying cannot help (bad names, a queue declared with other arguments).
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

/// What a consumer needs to settle one delivery.
struct DeliveryContext<'a> {
    subscription: &'a str,
    handler: &'a Arc<dyn EventHandler>,
    delivery_limit: u32,
}

impl DeliveryContext<'_> {
    /// Hands one delivery to the handler and acks, requeues or dead-letters it.
    /// Errors only when the channel can't take the acknowledgement.
    async fn handle(
        &self,
        delivery: Delivery,
        mut local_attempts: Option<&mut HashMap<Uuid, u32>>,
    ) -> Result<(), lapin::Error> {
        let mut event = match decode_event(&delivery) {
            Ok(event) => event,
            Err(reason) => {
                warn!(
                    subscription = %self.subscription,
                    routing_key = %delivery.routing_key,
                    reason = %reason,
                    "undecodable message, rejecting it to the dead-letter exchange"
                );
                delivery
                    .reject(BasicRejectOptions { requeue: false })
                    .await?;
                return Ok(());
            }
        };
        if let Some(seen) = local_attempts
            .as_deref()
            .and_then(|attempts| attempts.get(&event.id))
        {
            event.redeliveries = event.redeliveries.max(*seen);
        }

        let outcome = super::deliver(self.handler.as_ref(), &event, self.subscription).await;
        let deliveries = event.redeliveries.saturating_add(1);
        match outcome {
            Ok(()) => {
                if let Some(attempts) = local_attempts {
                    attempts.remove(&event.id);
                }
                delivery.ack(BasicAckOptions::default()).await?;
            }
            Err(failure) if deliveries >= self.delivery_limit => {
                warn!(
                    event_id = %event.id,
                    kind = %event.kind,
                    subscription = %self.subscription,
                    deliveries,
                    error = %failure,
                    "event handler failed at the delivery limit, dead-lettering event"
                );
                if let Some(attempts) = local_attempts {
                    attempts.remove(&event.id);
                }
                delivery
                    .reject(BasicRejectOptions { requeue: false })
                    .await?;
            }
            Err(failure) => {
                warn!(
                    event_id = %event.id,
                    kind = %event.kind,
                    subscription = %self.subscription,
                    deliveries,
                    error = %failure,
                    "event handler failed, requeueing event"
                );
                if let Some(attempts) = local_attempts.as_mut() {
                    attempts.insert(event.id, deliveries);
                }
                delivery
                    .nack(BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    })
                    .await?;
            }
        }
        Ok(())
    }
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

async fn open_publisher(settings: &AmqpSettings, generation: u64) -> Result<Publisher, BusError> {
    let connection = connect(settings, "hotline publisher").await?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|error| BusError::Connection(error.to_string()))?;
    declare_topology(&channel, settings)
        .await
        .map_err(|error| BusError::Broker(format!("declaring the topology: {error}")))?;
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

async fn publish_once(
    publisher: &Publisher,
    exchange: ShortString,
    routing_key: ShortString,
    payload: &[u8],
    properties: BasicProperties,
) -> Result<(), PublishFailure> {
    let confirm = publisher
        .channel
        .basic_publish(
            exchange,
            routing_key,
            BasicPublishOptions {
                mandatory: false,
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
    if confirmation.is_ack() {
        Ok(())
    } else {
        Err(PublishFailure::Nacked)
    }
}

/// Declares the event exchange, the dead-letter exchange and the dead-letter
/// queue; idempotent, so every connection does it.
async fn declare_topology(channel: &Channel, settings: &AmqpSettings) -> Result<(), lapin::Error> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let exchange = ShortString::try_new(settings.exchange.as_str())
        .map_err(|_too_long| name_too_long(&settings.exchange))?;
    let dead_letter_exchange = ShortString::try_new(settings.dead_letter_exchange.as_str())
        .map_err(|_too_long| name_too_long(&settings.dead_letter_exchange))?;
    let dead_letter_queue = settings.dead_letter_queue();
    let dead_letter_queue = ShortString::try_new(dead_letter_queue.as_str())
        .map_err(|_too_long| name_too_long(&dead_letter_queue))?;
    channel
        .exchange_declare(
            exchange,
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            dead_letter_exchange.clone(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), long_string("quorum"));
    if let Some(expires) = settings.queue_expires {
        arguments.insert("x-expires".into(), expires_millis(expires));
    }
    channel
        .queue_declare(
            dead_letter_queue.clone(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await?;
    channel
        .queue_bind(
            dead_letter_queue,
            dead_letter_exchange,
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

/// Declares the subscription's queue and returns its name.
async fn declare_subscription_queue(
    channel: &Channel,
    settings: &AmqpSettings,
    subscription: &Subscription,
) -> Result<ShortString, SessionError> {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-dead-letter-exchange".into(),
        long_string(&settings.dead_letter_exchange),
    );
    if let Some(expires) = settings.queue_expires {
        arguments.insert("x-expires".into(), expires_millis(expires));
    }
    let (name, options) = match subscription.fanout {
        Fanout::Shared => {
            arguments.insert("x-queue-type".into(), long_string("quorum"));
            arguments.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongLongInt(i64::from(settings.delivery_limit)),
            );
            let options = QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            };
            (
                short(&format!("{}{}", settings.queue_prefix, subscription.name))
                    .map_err(SessionError::Fatal)?,
                options,
            )
        }
        Fanout::EveryReplica => {
            // Classic queues have no delivery limit; the consumer counts instead.
            arguments.insert("x-queue-type".into(), long_string("classic"));
            let options = QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            };
            (ShortString::from(""), options)
        }
    };
    let queue = channel
        .queue_declare(name, options, arguments)
        .await
        .map_err(|error| setup_error("declaring the queue", &error))?;
    Ok(queue.name().clone())
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

fn expires_millis(expires: Duration) -> AMQPValue {
    let millis = i64::try_from(expires.as_millis()).unwrap_or(i64::MAX);
    AMQPValue::LongLongInt(millis.max(1))
}

/// The AMQP properties and CloudEvents headers of one event.
fn properties_for(event: &Event) -> Result<BasicProperties, BusError> {
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
    if let Some(traceparent) = &event.traceparent {
        headers.insert(header::TRACEPARENT.into(), long_string(traceparent));
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
        delivery.properties = properties_for(event).expect("properties");
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
        let decoded = decode_event(&delivery_of(&event)).expect("decodes");
        assert_eq!(decoded, event);
    }

    #[test]
    fn properties_follow_the_cloudevents_amqp_binding() {
        let event = Event::new("identity.customer.created", "/hotline/identity", vec![]);
        let properties = properties_for(&event).expect("properties");
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
