//! The RabbitMQ event bus against a real broker.
//!
//! The broker comes from `HOTLINE_TEST_AMQP_URL` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`). Without a broker each test prints
//! "skipping: rabbitmq not reachable" and passes, unless `HOTLINE_REQUIRE_INFRA=1`
//! (CI), where it fails. Every test uses its own exchanges and queues (uuid
//! suffix, `x-expires` 60 s) and deletes them at the end.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hotline_kit::bus::{
    AmqpBus, AmqpSettings, Bus, BusError, Event, EventHandler, Fanout, HandlerError, Subscription,
};
use lapin::message::BasicGetMessage;
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ExchangeDeleteOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const WAIT: Duration = Duration::from_secs(20);
const WARMUP_KIND: &str = "test.bus.warmup";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn amqp_url() -> String {
    std::env::var("HOTLINE_TEST_AMQP_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// Settings with an exchange and a dead-letter exchange of the test's own.
fn test_settings(delivery_limit: u32) -> AmqpSettings {
    let suffix = Uuid::new_v4().simple();
    AmqpSettings {
        url: amqp_url(),
        exchange: format!("test.events.{suffix}"),
        dead_letter_exchange: format!("test.dlx.{suffix}"),
        prefetch: 4,
        delivery_limit,
        queue_expires: Some(Duration::from_secs(60)),
        queue_prefix: String::new(),
    }
}

fn unique_queue(purpose: &str) -> String {
    format!("test.{purpose}.{}", Uuid::new_v4().simple())
}

/// The bus and an admin connection for the test, or `None` to skip it.
async fn start(settings: &AmqpSettings) -> Option<(AmqpBus, Admin)> {
    match AmqpBus::connect(settings.clone()).await {
        Ok(bus) => {
            let admin = Admin::connect(&settings.url).await;
            Some((bus, admin))
        }
        Err(error) => {
            if std::env::var("HOTLINE_REQUIRE_INFRA").as_deref() == Ok("1") {
                panic!(
                    "rabbitmq not reachable and HOTLINE_REQUIRE_INFRA=1 \
                     (set HOTLINE_TEST_AMQP_URL to point at a broker): {error}"
                );
            }
            println!("skipping: rabbitmq not reachable");
            eprintln!("  ({error})");
            None
        }
    }
}

/// A plain lapin connection to look at the broker from outside the bus.
struct Admin {
    connection: Connection,
}

impl Admin {
    async fn connect(url: &str) -> Self {
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .expect("admin connection");
        Self { connection }
    }

    /// How many consumers `queue` has, or `None` while it does not exist.
    async fn consumer_count(&self, queue: &str) -> Option<u32> {
        // A passive declare of a missing queue closes the channel: use a fresh one.
        let channel = self.connection.create_channel().await.expect("channel");
        let declared = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .ok()?;
        let _ = channel.close(200, "OK".into()).await;
        Some(declared.consumer_count())
    }

    /// Waits until a shared queue has `count` consumers (so it exists and is bound).
    async fn wait_for_consumers(&self, queue: &str, count: u32) {
        tokio::time::timeout(WAIT, async {
            while self.consumer_count(queue).await.unwrap_or(0) < count {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{queue} never got {count} consumers"));
    }

    /// Polls `queue` with basic.get until a message arrives.
    async fn get(&self, queue: &str) -> BasicGetMessage {
        let channel = self.connection.create_channel().await.expect("channel");
        tokio::time::timeout(WAIT, async {
            loop {
                let got = channel
                    .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                    .await
                    .expect("basic.get");
                if let Some(message) = got {
                    return message;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("nothing arrived in {queue}"))
    }

    /// Deletes the test's queues and exchanges (best effort: `x-expires` is the backstop).
    async fn cleanup(&self, settings: &AmqpSettings, queues: &[&str]) {
        let Ok(channel) = self.connection.create_channel().await else {
            return;
        };
        let dead_letter_queue = settings.dead_letter_queue();
        for queue in queues.iter().copied().chain([dead_letter_queue.as_str()]) {
            let _ = channel
                .queue_delete(queue.into(), QueueDeleteOptions::default())
                .await;
        }
        for exchange in [&settings.exchange, &settings.dead_letter_exchange] {
            let _ = channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
        let _ = self.connection.close(200, "OK".into()).await;
    }
}

type Deliveries = mpsc::UnboundedReceiver<(&'static str, Event)>;

/// Forwards every delivery to the test; fails the first `failures` deliveries
/// of each event (`u32::MAX`: always) and may take its time.
struct Recorder {
    consumer: &'static str,
    failures: u32,
    delay: Duration,
    deliveries: mpsc::UnboundedSender<(&'static str, Event)>,
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let _ = self.deliveries.send((self.consumer, event.clone()));
        if event.kind != WARMUP_KIND && event.redeliveries < self.failures {
            return Err(anyhow::anyhow!("refusing delivery {}", event.redeliveries).into());
        }
        Ok(())
    }
}

fn recorder(
    consumer: &'static str,
    failures: u32,
    delay: Duration,
    deliveries: &mpsc::UnboundedSender<(&'static str, Event)>,
) -> Arc<Recorder> {
    Arc::new(Recorder {
        consumer,
        failures,
        delay,
        deliveries: deliveries.clone(),
    })
}

fn subscription(name: &str, bindings: &[&str], fanout: Fanout) -> Subscription {
    Subscription {
        name: name.to_owned(),
        bindings: bindings.iter().map(|b| (*b).to_owned()).collect(),
        fanout,
    }
}

fn spawn_consumer(
    bus: &AmqpBus,
    subscription: Subscription,
    handler: Arc<dyn EventHandler>,
    shutdown: &CancellationToken,
) -> JoinHandle<Result<(), BusError>> {
    let bus = bus.clone();
    let shutdown = shutdown.clone();
    tokio::spawn(async move { bus.consume(subscription, handler, shutdown).await })
}

async fn stop(shutdown: &CancellationToken, tasks: Vec<JoinHandle<Result<(), BusError>>>) {
    shutdown.cancel();
    for task in tasks {
        tokio::time::timeout(WAIT, task)
            .await
            .expect("consume returns after shutdown")
            .expect("consumer task")
            .expect("consume ends with Ok");
    }
}

/// The next delivery that is not a warm-up event.
async fn next(rx: &mut Deliveries) -> (&'static str, Event) {
    tokio::time::timeout(WAIT, async {
        loop {
            let delivery = rx.recv().await.expect("the handler is alive");
            if delivery.1.kind != WARMUP_KIND {
                return delivery;
            }
        }
    })
    .await
    .expect("a delivery in time")
}

/// Asserts that no (non-warm-up) delivery arrives for a while.
async fn assert_quiet(rx: &mut Deliveries, how_long: Duration) {
    let extra = tokio::time::timeout(how_long, async {
        loop {
            match rx.recv().await {
                Some(delivery) if delivery.1.kind == WARMUP_KIND => {}
                other => return other,
            }
        }
    })
    .await;
    if let Ok(Some(delivery)) = extra {
        panic!("unexpected delivery: {delivery:?}");
    }
}

/// Publishes warm-up events until each of `consumers` has received one, so
/// their server-named queues exist and are bound.
async fn warm_up(bus: &AmqpBus, rx: &mut Deliveries, consumers: &[&'static str]) {
    let mut ready = HashSet::new();
    tokio::time::timeout(WAIT, async {
        while ready.len() < consumers.len() {
            bus.publish(&Event::new(WARMUP_KIND, "/hotline/test", Vec::new()))
                .await
                .expect("publish warm-up");
            let deadline = tokio::time::sleep(Duration::from_millis(200));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    () = &mut deadline => break,
                    delivery = rx.recv() => {
                        let (consumer, event) = delivery.expect("the handler is alive");
                        if event.kind == WARMUP_KIND {
                            ready.insert(consumer);
                        }
                    }
                }
            }
        }
    })
    .await
    .expect("every consumer is bound");
}

fn header_text(message: &BasicGetMessage, key: &str) -> Option<String> {
    let headers = message.delivery.properties.headers().as_ref()?;
    let value = headers.inner().get(key)?;
    value
        .as_long_string()
        .map(|text| String::from_utf8_lossy(text.as_bytes()).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundtrip_preserves_cloud_events_attributes_and_traceparent() {
    let settings = test_settings(5);
    let Some((bus, admin)) = start(&settings).await else {
        return;
    };
    let queue = unique_queue("roundtrip");
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = spawn_consumer(
        &bus,
        subscription(&queue, &["ticketing.ticket.*"], Fanout::Shared),
        recorder("a", 0, Duration::ZERO, &tx),
        &shutdown,
    );
    admin.wait_for_consumers(&queue, 1).await;

    // Not bound: never delivered.
    bus.publish(&Event::new(
        "routing.task.created",
        "/hotline/routing",
        vec![9],
    ))
    .await
    .expect("publish");
    let mut sent = Event::new(
        "ticketing.ticket.dispatched",
        "/hotline/ticketing",
        vec![0x0a, 0x03, 0x66, 0x6f, 0x6f, 0x00, 0xff],
    )
    .with_subject("ticket-42");
    sent.traceparent = Some(TRACEPARENT.to_owned());
    bus.publish(&sent).await.expect("publish");

    let (_, received) = next(&mut rx).await;
    assert_eq!(received, sent);
    assert_quiet(&mut rx, Duration::from_millis(300)).await;

    stop(&shutdown, vec![task]).await;
    admin.cleanup(&settings, &[&queue]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_handler_dead_letters_after_the_delivery_limit() {
    let settings = test_settings(3);
    let Some((bus, admin)) = start(&settings).await else {
        return;
    };
    let queue = unique_queue("poison");
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = spawn_consumer(
        &bus,
        subscription(&queue, &["surveys.#"], Fanout::Shared),
        recorder("a", u32::MAX, Duration::ZERO, &tx),
        &shutdown,
    );
    admin.wait_for_consumers(&queue, 1).await;

    let sent = Event::new("surveys.response.submitted", "/hotline/surveys", vec![1, 2])
        .with_subject("response-1");
    bus.publish(&sent).await.expect("publish");

    // Delivered exactly `delivery_limit` times, counted by the quorum queue.
    for attempt in 0..3 {
        let (_, event) = next(&mut rx).await;
        assert_eq!(event.id, sent.id);
        assert_eq!(event.redeliveries, attempt);
    }

    let dead = admin.get(&settings.dead_letter_queue()).await;
    assert_eq!(
        header_text(&dead, "cloudEvents_id"),
        Some(sent.id.to_string())
    );
    assert_eq!(dead.delivery.data, sent.data);
    assert!(
        dead.delivery
            .properties
            .headers()
            .as_ref()
            .is_some_and(|headers| headers.contains_key("x-death")),
        "the broker records why the message died"
    );
    assert_quiet(&mut rx, Duration::from_millis(500)).await;

    stop(&shutdown, vec![task]).await;
    admin.cleanup(&settings, &[&queue]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_messages_are_rejected_to_the_dead_letter_queue() {
    let settings = test_settings(5);
    let Some((bus, admin)) = start(&settings).await else {
        return;
    };
    let queue = unique_queue("undecodable");
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = spawn_consumer(
        &bus,
        subscription(&queue, &["ticketing.#"], Fanout::Shared),
        recorder("a", 0, Duration::ZERO, &tx),
        &shutdown,
    );
    admin.wait_for_consumers(&queue, 1).await;

    // A message without CloudEvents headers, from some other publisher.
    let channel = admin.connection.create_channel().await.expect("channel");
    channel
        .basic_publish(
            settings.exchange.as_str().into(),
            "ticketing.ticket.closed".into(),
            BasicPublishOptions::default(),
            b"not an event",
            BasicProperties::default(),
        )
        .await
        .expect("raw publish");

    let dead = admin.get(&settings.dead_letter_queue()).await;
    assert_eq!(dead.delivery.data, b"not an event");
    assert_quiet(&mut rx, Duration::from_millis(300)).await;

    stop(&shutdown, vec![task]).await;
    admin.cleanup(&settings, &[&queue]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn competing_consumers_get_each_event_once() {
    let settings = test_settings(5);
    let Some((bus, admin)) = start(&settings).await else {
        return;
    };
    let queue = unique_queue("competing");
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let tasks = ["a", "b"]
        .into_iter()
        .map(|consumer| {
            spawn_consumer(
                &bus,
                subscription(&queue, &["routing.task.*"], Fanout::Shared),
                recorder(consumer, 0, Duration::from_millis(5), &tx),
                &shutdown,
            )
        })
        .collect();
    admin.wait_for_consumers(&queue, 2).await;

    let mut sent = HashSet::new();
    for _ in 0..30 {
        let event = Event::new("routing.task.created", "/hotline/routing", Vec::new());
        sent.insert(event.id);
        bus.publish(&event).await.expect("publish");
    }
    let mut received = HashSet::new();
    let mut consumers = HashSet::new();
    for _ in 0..30 {
        let (consumer, event) = next(&mut rx).await;
        assert!(received.insert(event.id), "{} delivered twice", event.id);
        consumers.insert(consumer);
    }
    assert_eq!(received, sent);
    assert_eq!(consumers.len(), 2, "both consumers took a share");
    assert_quiet(&mut rx, Duration::from_millis(500)).await;

    stop(&shutdown, tasks).await;
    admin.cleanup(&settings, &[&queue]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_consumers_both_receive() {
    let settings = test_settings(5);
    let Some((bus, admin)) = start(&settings).await else {
        return;
    };
    let name = unique_queue("replica");
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let tasks = ["a", "b"]
        .into_iter()
        .map(|consumer| {
            spawn_consumer(
                &bus,
                subscription(
                    &name,
                    &["knowledge.article.*", "test.bus.*"],
                    Fanout::EveryReplica,
                ),
                recorder(consumer, 0, Duration::ZERO, &tx),
                &shutdown,
            )
        })
        .collect();
    warm_up(&bus, &mut rx, &["a", "b"]).await;

    let sent = Event::new("knowledge.article.published", "/hotline/knowledge", vec![7]);
    bus.publish(&sent).await.expect("publish");
    let mut consumers = HashSet::new();
    for _ in 0..2 {
        let (consumer, event) = next(&mut rx).await;
        assert_eq!(event, sent);
        consumers.insert(consumer);
    }
    assert_eq!(consumers, HashSet::from(["a", "b"]));
    assert_quiet(&mut rx, Duration::from_millis(300)).await;

    stop(&shutdown, tasks).await;
    admin.cleanup(&settings, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_failures_are_dead_lettered_too() {
    let settings = test_settings(2);
    let Some((bus, admin)) = start(&settings).await else {
        return;
    };
    let name = unique_queue("replica-poison");
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = spawn_consumer(
        &bus,
        subscription(&name, &["knowledge.#", "test.bus.*"], Fanout::EveryReplica),
        recorder("a", u32::MAX, Duration::ZERO, &tx),
        &shutdown,
    );
    warm_up(&bus, &mut rx, &["a"]).await;

    let sent = Event::new("knowledge.article.deleted", "/hotline/knowledge", vec![3]);
    bus.publish(&sent).await.expect("publish");
    // The classic queue has no delivery count: the consumer keeps it.
    for attempt in 0..2 {
        let (_, event) = next(&mut rx).await;
        assert_eq!(event.id, sent.id);
        assert_eq!(event.redeliveries, attempt);
    }
    let dead = admin.get(&settings.dead_letter_queue()).await;
    assert_eq!(
        header_text(&dead, "cloudEvents_id"),
        Some(sent.id.to_string())
    );
    assert_quiet(&mut rx, Duration::from_millis(500)).await;

    stop(&shutdown, vec![task]).await;
    admin.cleanup(&settings, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_confirms_return_ok() {
    let settings = test_settings(5);
    let Some((bus, admin)) = start(&settings).await else {
        return;
    };
    bus.check().await.expect("connected bus is ready");

    // Confirmed even when nothing is bound (mandatory is off).
    bus.publish(&Event::new(
        "identity.customer.created",
        "/hotline/identity",
        vec![1],
    ))
    .await
    .expect("confirmed publish");

    // After the connection goes away the next publish connects again.
    bus.close().await;
    bus.publish(&Event::new(
        "identity.customer.updated",
        "/hotline/identity",
        vec![2],
    ))
    .await
    .expect("publish reconnects");
    bus.check().await.expect("ready again");

    // Many publishes in flight on the one confirm channel.
    let publishes = (0..20).map(|i| {
        let bus = bus.clone();
        tokio::spawn(async move {
            bus.publish(&Event::new(
                "identity.customer.updated",
                "/hotline/identity",
                vec![i],
            ))
            .await
        })
    });
    for publish in publishes.collect::<Vec<_>>() {
        publish.await.expect("task").expect("confirmed publish");
    }

    admin.cleanup(&settings, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_event_in_hand_and_acks_it() {
    let settings = test_settings(5);
    let Some((bus, admin)) = start(&settings).await else {
        return;
    };
    let queue = unique_queue("shutdown");
    let sub = subscription(&queue, &["ticketing.#"], Fanout::Shared);
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = spawn_consumer(
        &bus,
        sub.clone(),
        recorder("slow", 0, Duration::from_millis(500), &tx),
        &shutdown,
    );
    admin.wait_for_consumers(&queue, 1).await;

    let sent = Event::new("ticketing.ticket.created", "/hotline/ticketing", vec![]);
    bus.publish(&sent).await.expect("publish");
    tokio::time::sleep(Duration::from_millis(150)).await;
    stop(&shutdown, vec![task]).await;
    // The handler finished before consume returned.
    let (consumer, event) = rx.try_recv().expect("the event in hand was finished");
    assert_eq!((consumer, event.id), ("slow", sent.id));

    // It was acked: a new consumer of the queue gets nothing.
    let restart = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = spawn_consumer(
        &bus,
        sub,
        recorder("next", 0, Duration::ZERO, &tx),
        &restart,
    );
    admin.wait_for_consumers(&queue, 1).await;
    assert_quiet(&mut rx, Duration::from_millis(500)).await;

    stop(&restart, vec![task]).await;
    admin.cleanup(&settings, &[&queue]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_recovers_when_the_broker_cancels_it() {
    let settings = test_settings(5);
    let Some((bus, admin)) = start(&settings).await else {
        return;
    };
    let queue = unique_queue("recover");
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = spawn_consumer(
        &bus,
        subscription(&queue, &["routing.#"], Fanout::Shared),
        recorder("a", 0, Duration::ZERO, &tx),
        &shutdown,
    );
    admin.wait_for_consumers(&queue, 1).await;

    // Deleting the queue cancels the consumer from the broker's side; the bus
    // reconnects, declares the queue again and resumes.
    let channel = admin.connection.create_channel().await.expect("channel");
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .expect("queue deleted");
    admin.wait_for_consumers(&queue, 1).await;

    let sent = Event::new("routing.agent.logged_in", "/hotline/routing", vec![]);
    bus.publish(&sent).await.expect("publish");
    assert_eq!(next(&mut rx).await.1.id, sent.id);

    stop(&shutdown, vec![task]).await;
    admin.cleanup(&settings, &[&queue]).await;
}

#[tokio::test]
async fn unreachable_broker_is_a_connection_error() {
    let settings = AmqpSettings {
        url: "amqp://guest:guest@127.0.0.1:1/%2f".to_owned(),
        ..AmqpSettings::default()
    };
    match AmqpBus::connect(settings).await {
        Err(BusError::Connection(message)) => {
            assert!(
                !message.contains("guest:guest"),
                "credentials leak: {message}"
            );
        }
        other => panic!("expected a connection error, got {other:?}"),
    }
}
