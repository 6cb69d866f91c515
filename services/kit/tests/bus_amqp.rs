//! The RabbitMQ event bus against a real broker.
//!
//! The servers come from testkit's `Infra::real()`, with its rule: without them a
//! test says so and passes, unless `HOTLINE_REQUIRE_INFRA=1` (CI), where it
//! fails. Every test runs in a virtual host of its own, with the production
//! exchange and queue names, and the virtual host is deleted afterwards.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hotline_kit::bus::{
    AmqpBus, AmqpSettings, Bus, BusError, DeadLetterAction, DeadLetterFilter, Event, EventHandler,
    Fanout, HandlerError, RetryPolicy, Subscription, UNROUTABLE,
};
use hotline_testkit::{Infra, Link, TcpProxy};
use lapin::message::BasicGetMessage;
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);
const WARMUP_KIND: &str = "test.bus.warmup";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The production names in the run's virtual host, with quick retries.
fn test_settings(infra: &Infra, delivery_limit: u32) -> AmqpSettings {
    AmqpSettings {
        url: infra.amqp_url.clone(),
        prefetch: 4,
        retry: RetryPolicy {
            delivery_limit,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(400),
        },
        ..AmqpSettings::default()
    }
}

/// The run's servers, the bus and an admin connection, or `None` to skip.
async fn start(delivery_limit: u32) -> Option<(Infra, AmqpSettings, AmqpBus, Admin)> {
    let infra = Infra::real().await?;
    let settings = test_settings(&infra, delivery_limit);
    let bus = AmqpBus::new(settings.clone());
    bus.check().await.expect("the broker answers");
    let admin = Admin::connect(&settings.url).await;
    Some((infra, settings, bus, admin))
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

/// Fails every delivery (but the warm-up), telling the test when each came: the
/// test's own reading of a channel may come late, the handler's clock doesn't.
struct AlwaysFails(mpsc::UnboundedSender<(std::time::Instant, Event)>);

#[async_trait]
impl EventHandler for AlwaysFails {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        if event.kind == WARMUP_KIND {
            return Ok(());
        }
        let _ = self.0.send((std::time::Instant::now(), event.clone()));
        Err(anyhow::anyhow!("refusing delivery {}", event.redeliveries).into())
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
    hotline_kit::telemetry::init_for_tests();
    let Some((_infra, settings, bus, admin)) = start(5).await else {
        return;
    };
    let queue = "test.roundtrip".to_owned();
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = spawn_consumer(
        &bus,
        subscription(&queue, &["ticketing.ticket.*"], Fanout::Shared),
        recorder("a", 0, Duration::ZERO, &tx),
        &shutdown,
    );
    admin.wait_for_consumers(&queue, 1).await;

    // Not bound: never delivered here, but kept as unroutable.
    let stray = Event::new("routing.task.created", "/hotline/routing", vec![9]);
    bus.publish(&stray).await.expect("publish");
    let mut sent = Event::new(
        "ticketing.ticket.dispatched",
        "/hotline/ticketing",
        vec![0x0a, 0x03, 0x66, 0x6f, 0x6f, 0x00, 0xff],
    )
    .with_subject("ticket-42");
    sent.traceparent = Some(TRACEPARENT.to_owned());
    bus.publish(&sent).await.expect("publish");

    let (_, mut received) = next(&mut rx).await;
    // The publish span's context travels: the same trace, a span of its own.
    let carried = received.traceparent.take().expect("a traceparent");
    assert_eq!(
        hotline_kit::telemetry::trace_id(&carried),
        hotline_kit::telemetry::trace_id(TRACEPARENT)
    );
    assert_ne!(carried, TRACEPARENT);
    sent.traceparent = None;
    assert_eq!(received, sent);
    assert_quiet(&mut rx, Duration::from_millis(300)).await;
    let parked = admin.get(&settings.unroutable_queue()).await;
    assert_eq!(
        header_text(&parked, "cloudEvents_id"),
        Some(stray.id.to_string())
    );

    stop(&shutdown, vec![task]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_handler_dead_letters_after_the_delivery_limit() {
    let Some((_infra, _settings, bus, admin)) = start(3).await else {
        return;
    };
    let queue = "test.poison".to_owned();
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = spawn_consumer(
        &bus,
        subscription(&queue, &["surveys.#"], Fanout::Shared),
        Arc::new(AlwaysFails(tx)),
        &shutdown,
    );
    admin.wait_for_consumers(&queue, 1).await;

    let sent = Event::new("surveys.response.submitted", "/hotline/surveys", vec![1, 2])
        .with_subject("response-1");
    bus.publish(&sent).await.expect("publish");

    // Handed over exactly `delivery_limit` times, with backoff between attempts.
    let mut arrivals = Vec::new();
    for attempt in 0..3 {
        let (at, event) = next_failure(&mut rx).await;
        arrivals.push(at);
        assert_eq!(event.id, sent.id);
        assert_eq!(event.redeliveries, attempt);
    }
    assert!(arrivals[1] - arrivals[0] >= Duration::from_millis(100));
    assert!(arrivals[2] - arrivals[1] >= Duration::from_millis(200));

    // Kept with where and why it failed; an operator lists, replays and drops it.
    let filter = DeadLetterFilter::default();
    let listed = bus
        .dead_letters(DeadLetterAction::List, &filter)
        .await
        .expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].queue, queue);
    assert_eq!(listed[0].event.id, sent.id);
    assert_eq!(listed[0].event.data, sent.data);
    assert!(
        listed[0].error.contains("refusing delivery 2"),
        "{}",
        listed[0].error
    );
    // Listing leaves it where it was.
    let again = bus
        .dead_letters(DeadLetterAction::List, &filter)
        .await
        .expect("list");
    assert_eq!(again.len(), 1);

    let replayed = bus
        .dead_letters(DeadLetterAction::Replay, &filter)
        .await
        .expect("replay");
    assert_eq!(replayed.len(), 1);
    for attempt in 0..3 {
        let (_, event) = next_failure(&mut rx).await;
        assert_eq!((event.id, event.redeliveries), (sent.id, attempt));
    }
    let dropped = eventually_dead(&bus, 1).await;
    assert_eq!(dropped[0].event.id, sent.id);
    let dropped = bus
        .dead_letters(
            DeadLetterAction::Drop,
            &DeadLetterFilter {
                queue: Some(queue.clone()),
                ids: vec![sent.id],
            },
        )
        .await
        .expect("drop");
    assert_eq!(dropped.len(), 1);
    assert!(
        bus.dead_letters(DeadLetterAction::List, &filter)
            .await
            .expect("list")
            .is_empty()
    );
    let after = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
    assert!(after.is_err(), "delivered after it was dropped: {after:?}");

    stop(&shutdown, vec![task]).await;
}

async fn next_failure(
    rx: &mut mpsc::UnboundedReceiver<(std::time::Instant, Event)>,
) -> (std::time::Instant, Event) {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a delivery in time")
        .expect("the handler is alive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_messages_go_to_the_dead_letter_queue() {
    let Some((_infra, settings, bus, admin)) = start(5).await else {
        return;
    };
    let queue = "test.undecodable".to_owned();
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
    assert_eq!(header_text(&dead, "x-hotline-queue"), Some(queue.clone()));
    assert_quiet(&mut rx, Duration::from_millis(300)).await;

    stop(&shutdown, vec![task]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn competing_consumers_get_each_event_once() {
    let Some((_infra, _settings, bus, admin)) = start(5).await else {
        return;
    };
    let queue = "test.competing".to_owned();
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_consumers_both_receive() {
    let Some((_infra, _settings, bus, _admin)) = start(5).await else {
        return;
    };
    let name = "test.replica".to_owned();
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_failures_are_dead_lettered_too() {
    let Some((_infra, settings, bus, admin)) = start(2).await else {
        return;
    };
    let name = "test.replica-poison".to_owned();
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_confirms_return_ok() {
    let Some((_infra, _settings, bus, _admin)) = start(5).await else {
        return;
    };
    bus.check().await.expect("connected bus is ready");

    // Confirmed even when nothing is bound: the event is kept as unroutable.
    let stray = Event::new("identity.customer.created", "/hotline/identity", vec![1]);
    bus.publish(&stray).await.expect("confirmed publish");
    let unroutable = bus
        .dead_letters(
            DeadLetterAction::List,
            &DeadLetterFilter {
                queue: Some(UNROUTABLE.into()),
                ids: vec![],
            },
        )
        .await
        .expect("list");
    assert_eq!(unroutable.len(), 1);
    assert_eq!(unroutable[0].event, stray);

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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_event_in_hand_and_acks_it() {
    let Some((_infra, _settings, bus, admin)) = start(5).await else {
        return;
    };
    let queue = "test.shutdown".to_owned();
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_recovers_when_the_broker_cancels_it() {
    let Some((_infra, _settings, bus, admin)) = start(5).await else {
        return;
    };
    let queue = "test.recover".to_owned();
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
}

#[tokio::test]
async fn unreachable_broker_is_a_connection_error() {
    let bus = AmqpBus::new(AmqpSettings {
        url: "amqp://guest:guest@127.0.0.1:1/%2f".to_owned(),
        ..AmqpSettings::default()
    });
    let event = Event::new("identity.customer.created", "/hotline/identity", vec![]);
    for outcome in [bus.publish(&event).await, bus.check().await] {
        match outcome {
            Err(BusError::Connection(message)) => {
                assert!(
                    !message.contains("guest:guest"),
                    "credentials leak: {message}"
                );
            }
            other => panic!("expected a connection error, got {other:?}"),
        }
    }
}

/// Waits until `count` dead letters are there, and returns them.
async fn eventually_dead(bus: &AmqpBus, count: usize) -> Vec<hotline_kit::bus::DeadLetter> {
    tokio::time::timeout(WAIT, async {
        loop {
            let letters = bus
                .dead_letters(DeadLetterAction::List, &DeadLetterFilter::default())
                .await
                .expect("list");
            if letters.len() >= count {
                return letters;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("dead letters in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_declared_with_other_arguments_is_used_as_it_is() {
    let Some((_infra, _settings, bus, admin)) = start(3).await else {
        return;
    };
    // As an older release (or an operator) left it: a delivery limit and a
    // dead-letter exchange as queue arguments.
    let queue = "identity.timeline";
    let channel = admin.connection.create_channel().await.expect("channel");
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    arguments.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(3));
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("hotline.dlx".into()),
    );
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await
        .expect("legacy queue");

    let shutdown = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = spawn_consumer(
        &bus,
        subscription(queue, &["identity.activity.*"], Fanout::Shared),
        recorder("a", 0, Duration::ZERO, &tx),
        &shutdown,
    );
    admin.wait_for_consumers(queue, 1).await;
    let sent = Event::new("identity.activity.recorded", "/hotline/identity", vec![5]);
    bus.publish(&sent).await.expect("publish");
    assert_eq!(next(&mut rx).await.1.id, sent.id);
    stop(&shutdown, vec![task]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_queues_keep_events_published_before_their_consumer_starts() {
    let Some((_infra, _settings, bus, admin)) = start(3).await else {
        return;
    };
    let sub = subscription("reporting.events", &["ticketing.#"], Fanout::Shared);
    bus.declare(std::slice::from_ref(&sub));
    let early = Event::new("ticketing.ticket.created", "/hotline/ticketing", vec![1]);
    bus.publish(&early).await.expect("publish");
    assert_eq!(admin.consumer_count("reporting.events").await, Some(0));

    let shutdown = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = spawn_consumer(&bus, sub, recorder("a", 0, Duration::ZERO, &tx), &shutdown);
    assert_eq!(next(&mut rx).await.1, early);
    stop(&shutdown, vec![task]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_with_the_broker_down_fail_fast_and_work_once_it_is_back() {
    let Some(infra) = Infra::real().await else {
        return;
    };
    let (proxy, proxied) = TcpProxy::in_front_of(&infra.amqp_url, 5672, Link::Down).await;
    let mut settings = test_settings(&infra, 3);
    settings.url = proxied;
    // Built with the broker down: nothing fails until something is published.
    let bus = AmqpBus::new(settings);
    let event = Event::new("identity.customer.created", "/hotline/identity", vec![]);
    let started = std::time::Instant::now();
    assert!(matches!(
        bus.publish(&event).await,
        Err(BusError::Connection(_))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a refused connection fails at once"
    );

    proxy.set(Link::Up);
    bus.publish(&event)
        .await
        .expect("published once the broker is back");
    // Cut mid-run: the next publish reconnects.
    proxy.set(Link::Down);
    assert!(bus.publish(&event).await.is_err());
    proxy.set(Link::Up);
    bus.publish(&event)
        .await
        .expect("published after reconnecting");
}
