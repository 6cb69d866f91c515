//! The in-process bus of the embedded mode: a topic exchange with one queue per
//! subscription, the same at-least-once contract as the RabbitMQ backend.
//!
//! - A `Fanout::Shared` queue is named after the subscription and outlives its
//!   consumers; consumers with that name compete for its events. It exists from
//!   the first `consume` of the name: events published before that are dropped,
//!   like on an exchange without bindings.
//! - A `Fanout::EveryReplica` queue belongs to one `consume` call and goes away
//!   with it.
//! - A handler error sends the event back to the head of its queue with
//!   `redeliveries + 1`; the delivery that reaches `delivery_limit` moves it to the
//!   dead-letter list instead.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{Bus, BusError, Event, EventHandler, Fanout, Subscription, topic_matches};

/// In-process topic exchange; clones share the same queues.
#[derive(Clone)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

struct Inner {
    /// How many times an event is handed to a handler before it is dead-lettered (at least 1).
    delivery_limit: u32,
    exchange: Mutex<Exchange>,
    dead_letters: Mutex<Vec<Event>>,
}

#[derive(Default)]
struct Exchange {
    queues: HashMap<QueueKey, Binding>,
    next_transient_id: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum QueueKey {
    /// A `Fanout::Shared` queue, named after its subscription.
    Named(String),
    /// A `Fanout::EveryReplica` queue of one `consume` call.
    Transient(u64),
}

struct Binding {
    patterns: HashSet<String>,
    queue: Arc<Queue>,
}

struct Queue {
    name: String,
    events: Mutex<VecDeque<Event>>,
    /// One permit per enqueued event, so a waiting consumer wakes for each.
    ready: Notify,
}

impl Queue {
    fn new(name: String) -> Self {
        Self {
            name,
            events: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
        }
    }

    fn push_back(&self, event: Event) {
        lock(&self.events).push_back(event);
        self.ready.notify_one();
    }

    /// Requeued events go first, as a quorum queue returns them ahead of new ones.
    fn push_front(&self, event: Event) {
        lock(&self.events).push_front(event);
        self.ready.notify_one();
    }

    fn pop(&self) -> Option<Event> {
        lock(&self.events).pop_front()
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every
/// critical section here is a single push, pop or insert).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryBus {
    /// A bus that hands each event to handlers at most `delivery_limit` times
    /// (0 is taken as 1) before dead-lettering it.
    pub fn new(delivery_limit: u32) -> Self {
        Self {
            inner: Arc::new(Inner {
                delivery_limit: delivery_limit.max(1),
                exchange: Mutex::new(Exchange::default()),
                dead_letters: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Events that reached the delivery limit, oldest first.
    pub fn dead_letters(&self) -> Vec<Event> {
        lock(&self.inner.dead_letters).clone()
    }

    /// Declares (or joins) the subscription's queue and adds its bindings.
    fn attach(&self, subscription: &Subscription) -> (QueueKey, Arc<Queue>) {
        let mut exchange = lock(&self.inner.exchange);
        let key = match subscription.fanout {
            Fanout::Shared => QueueKey::Named(subscription.name.clone()),
            Fanout::EveryReplica => {
                exchange.next_transient_id += 1;
                QueueKey::Transient(exchange.next_transient_id)
            }
        };
        let binding = exchange
            .queues
            .entry(key.clone())
            .or_insert_with(|| Binding {
                patterns: HashSet::new(),
                queue: Arc::new(Queue::new(subscription.name.clone())),
            });
        binding
            .patterns
            .extend(subscription.bindings.iter().cloned());
        (key, Arc::clone(&binding.queue))
    }

    fn detach(&self, key: &QueueKey) {
        if let QueueKey::Transient(_) = key {
            lock(&self.inner.exchange).queues.remove(key);
        }
    }

    /// Finishes a delivery that was not acked: back to the queue, or to the
    /// dead letters once it has been delivered `delivery_limit` times.
    fn settle_failure(&self, queue: &Queue, mut event: Event) {
        let deliveries = event.redeliveries.saturating_add(1);
        if deliveries >= self.inner.delivery_limit {
            warn!(
                event_id = %event.id,
                kind = %event.kind,
                queue = %queue.name,
                deliveries,
                "delivery limit reached, dead-lettering event"
            );
            lock(&self.inner.dead_letters).push(event);
        } else {
            event.redeliveries = deliveries;
            queue.push_front(event);
        }
    }

    #[cfg(test)]
    fn queue_count(&self) -> usize {
        lock(&self.inner.exchange).queues.len()
    }
}

impl fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBus")
            .field("delivery_limit", &self.inner.delivery_limit)
            .finish_non_exhaustive()
    }
}

/// Removes a transient queue when its `consume` call ends, however it ends.
struct Detach<'a> {
    bus: &'a MemoryBus,
    key: QueueKey,
}

impl Drop for Detach<'_> {
    fn drop(&mut self) {
        self.bus.detach(&self.key);
    }
}

/// The event in hand. If the consuming future is dropped (or the handler
/// panics) before the event is settled, it goes back to the queue, as an
/// unacked message does when a broker channel closes.
struct InFlight<'a> {
    bus: &'a MemoryBus,
    queue: &'a Queue,
    event: Option<Event>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(event) = self.event.take() {
            self.bus.settle_failure(self.queue, event);
        }
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, event: &Event) -> Result<(), BusError> {
        let exchange = lock(&self.inner.exchange);
        for binding in exchange.queues.values() {
            if binding
                .patterns
                .iter()
                .any(|pattern| topic_matches(pattern, &event.kind))
            {
                let mut copy = event.clone();
                copy.redeliveries = 0;
                binding.queue.push_back(copy);
            }
        }
        Ok(())
    }

    async fn consume(
        &self,
        subscription: Subscription,
        handler: Arc<dyn EventHandler>,
        shutdown: CancellationToken,
    ) -> Result<(), BusError> {
        let (key, queue) = self.attach(&subscription);
        let _detach = Detach { bus: self, key };
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let Some(event) = queue.pop() else {
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => return Ok(()),
                    () = queue.ready.notified() => {}
                }
                continue;
            };
            let mut in_flight = InFlight {
                bus: self,
                queue: &queue,
                event: Some(event),
            };
            let outcome = match in_flight.event.as_ref() {
                Some(event) => super::deliver(handler.as_ref(), event, &subscription.name).await,
                None => Ok(()),
            };
            if let Err(error) = outcome {
                if let Some(event) = in_flight.event.as_ref() {
                    warn!(
                        event_id = %event.id,
                        kind = %event.kind,
                        subscription = %subscription.name,
                        redeliveries = event.redeliveries,
                        error = %error,
                        "event handler failed"
                    );
                }
                // Dropping the guard with the event still inside settles the failure.
                drop(in_flight);
            } else {
                // Acked: nothing goes back to the queue.
                in_flight.event = None;
            }
        }
    }

    async fn check(&self) -> Result<(), BusError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use tokio::sync::mpsc;
    use tokio::task::JoinHandle;
    use tokio_util::sync::CancellationToken;

    use super::MemoryBus;
    use crate::bus::{Bus, Event, EventHandler, Fanout, HandlerError, Subscription};

    const WAIT: Duration = Duration::from_secs(5);

    /// Records every delivery; fails the first `failures` deliveries of each event
    /// (`u32::MAX`: always), and may sleep before answering.
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
            if event.redeliveries < self.failures {
                return Err(anyhow::anyhow!("refusing delivery {}", event.redeliveries).into());
            }
            Ok(())
        }
    }

    type Deliveries = mpsc::UnboundedReceiver<(&'static str, Event)>;

    fn recorder(consumer: &'static str, failures: u32) -> (Arc<Recorder>, Deliveries) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handler = Arc::new(Recorder {
            consumer,
            failures,
            delay: Duration::ZERO,
            deliveries: tx,
        });
        (handler, rx)
    }

    fn subscription(name: &str, bindings: &[&str], fanout: Fanout) -> Subscription {
        Subscription {
            name: name.to_owned(),
            bindings: bindings.iter().map(|b| (*b).to_owned()).collect(),
            fanout,
        }
    }

    fn spawn_consumer(
        bus: &MemoryBus,
        subscription: Subscription,
        handler: Arc<dyn EventHandler>,
        shutdown: &CancellationToken,
    ) -> JoinHandle<()> {
        let bus = bus.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            bus.consume(subscription, handler, shutdown)
                .await
                .expect("memory consume never fails");
        })
    }

    /// Waits until `count` queues exist, i.e. the spawned consumers have attached.
    async fn wait_for_queues(bus: &MemoryBus, count: usize) {
        tokio::time::timeout(WAIT, async {
            while bus.queue_count() < count {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .expect("consumers attach");
    }

    async fn next(rx: &mut Deliveries) -> (&'static str, Event) {
        tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("a delivery in time")
            .expect("the handler is alive")
    }

    async fn assert_quiet(rx: &mut Deliveries) {
        // Quiet: nothing arrives in time, or every handler is gone.
        let extra = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await;
        if let Ok(Some(delivery)) = extra {
            panic!("unexpected delivery: {delivery:?}");
        }
    }

    fn event(kind: &str) -> Event {
        Event::new(kind, "/hotline/test", kind.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn routes_by_binding_pattern() {
        let bus = MemoryBus::new(5);
        let shutdown = CancellationToken::new();
        let (handler, mut rx) = recorder("a", 0);
        let task = spawn_consumer(
            &bus,
            subscription(
                "test.routing",
                &["ticketing.ticket.*", "identity.#"],
                Fanout::Shared,
            ),
            handler,
            &shutdown,
        );
        wait_for_queues(&bus, 1).await;

        for kind in [
            "ticketing.ticket.closed",
            "routing.task.created",
            "identity.customer.created",
            "ticketing.ticket.closed.late",
            "identity",
        ] {
            bus.publish(&event(kind)).await.expect("publish");
        }

        let mut kinds = Vec::new();
        for _ in 0..3 {
            kinds.push(next(&mut rx).await.1.kind);
        }
        assert_eq!(
            kinds,
            [
                "ticketing.ticket.closed",
                "identity.customer.created",
                "identity"
            ]
        );
        assert_quiet(&mut rx).await;

        shutdown.cancel();
        task.await.expect("consumer task");
    }

    #[tokio::test]
    async fn delivers_all_cloud_event_attributes() {
        let bus = MemoryBus::new(5);
        let shutdown = CancellationToken::new();
        let (handler, mut rx) = recorder("a", 0);
        let task = spawn_consumer(
            &bus,
            subscription("test.attributes", &["#"], Fanout::Shared),
            handler,
            &shutdown,
        );
        wait_for_queues(&bus, 1).await;

        let mut sent = event("ticketing.ticket.dispatched").with_subject("ticket-42");
        sent.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
        bus.publish(&sent).await.expect("publish");

        let (_, received) = next(&mut rx).await;
        assert_eq!(received, sent);

        shutdown.cancel();
        task.await.expect("consumer task");
    }

    #[tokio::test]
    async fn keeps_events_for_an_existing_queue_and_drops_them_before_it_exists() {
        let bus = MemoryBus::new(5);
        let sub = subscription("test.durable", &["ticketing.#"], Fanout::Shared);

        // No queue yet: dropped, like a publish to an exchange without bindings.
        bus.publish(&event("ticketing.ticket.created"))
            .await
            .expect("publish");

        let first_run = CancellationToken::new();
        let (handler, mut rx) = recorder("a", 0);
        let task = spawn_consumer(&bus, sub.clone(), handler, &first_run);
        wait_for_queues(&bus, 1).await;
        first_run.cancel();
        task.await.expect("consumer task");
        assert_quiet(&mut rx).await;

        // The queue outlives its consumer and keeps what arrives meanwhile.
        let kept = event("ticketing.ticket.closed");
        bus.publish(&kept).await.expect("publish");

        let second_run = CancellationToken::new();
        let (handler, mut rx) = recorder("a", 0);
        let task = spawn_consumer(&bus, sub, handler, &second_run);
        assert_eq!(next(&mut rx).await.1.id, kept.id);
        assert_quiet(&mut rx).await;
        second_run.cancel();
        task.await.expect("consumer task");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn competing_consumers_get_each_event_once() {
        let bus = MemoryBus::new(5);
        let shutdown = CancellationToken::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for consumer in ["a", "b"] {
            let handler = Arc::new(Recorder {
                consumer,
                failures: 0,
                delay: Duration::from_millis(2),
                deliveries: tx.clone(),
            });
            tasks.push(spawn_consumer(
                &bus,
                subscription("test.competing", &["routing.#"], Fanout::Shared),
                handler,
                &shutdown,
            ));
        }
        wait_for_queues(&bus, 1).await;
        // Both consumers share one queue; give the second time to attach.
        tokio::time::sleep(Duration::from_millis(20)).await;

        let mut sent = HashSet::new();
        for _ in 0..40 {
            let e = event("routing.task.created");
            sent.insert(e.id);
            bus.publish(&e).await.expect("publish");
        }

        let mut received = HashSet::new();
        let mut consumers = HashSet::new();
        for _ in 0..40 {
            let (consumer, e) = next(&mut rx).await;
            assert!(received.insert(e.id), "event {} delivered twice", e.id);
            consumers.insert(consumer);
        }
        assert_eq!(received, sent);
        assert_eq!(consumers.len(), 2, "both consumers took a share");
        assert_quiet(&mut rx).await;

        shutdown.cancel();
        for task in tasks {
            task.await.expect("consumer task");
        }
    }

    #[tokio::test]
    async fn every_replica_consumers_each_get_every_event() {
        let bus = MemoryBus::new(5);
        let shutdown = CancellationToken::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for consumer in ["a", "b"] {
            let handler = Arc::new(Recorder {
                consumer,
                failures: 0,
                delay: Duration::ZERO,
                deliveries: tx.clone(),
            });
            tasks.push(spawn_consumer(
                &bus,
                subscription(
                    "test.replica",
                    &["knowledge.article.*"],
                    Fanout::EveryReplica,
                ),
                handler,
                &shutdown,
            ));
        }
        wait_for_queues(&bus, 2).await;

        let sent = event("knowledge.article.published");
        bus.publish(&sent).await.expect("publish");

        let mut consumers = HashSet::new();
        for _ in 0..2 {
            let (consumer, e) = next(&mut rx).await;
            assert_eq!(e.id, sent.id);
            consumers.insert(consumer);
        }
        assert_eq!(consumers, HashSet::from(["a", "b"]));
        assert_quiet(&mut rx).await;

        shutdown.cancel();
        for task in tasks {
            task.await.expect("consumer task");
        }
        // Per-replica queues go away with their consumers.
        assert_eq!(bus.queue_count(), 0);
    }

    #[tokio::test]
    async fn failing_handler_is_redelivered_then_dead_lettered() {
        let bus = MemoryBus::new(3);
        let shutdown = CancellationToken::new();
        let (handler, mut rx) = recorder("a", u32::MAX);
        let task = spawn_consumer(
            &bus,
            subscription("test.poison", &["#"], Fanout::Shared),
            handler,
            &shutdown,
        );
        wait_for_queues(&bus, 1).await;

        let sent = event("surveys.response.submitted");
        bus.publish(&sent).await.expect("publish");

        for attempt in 0..3 {
            let (_, e) = next(&mut rx).await;
            assert_eq!(e.id, sent.id);
            assert_eq!(e.redeliveries, attempt);
        }
        assert_quiet(&mut rx).await;

        let dead = bus.dead_letters();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].id, sent.id);
        assert_eq!(dead[0].data, sent.data);

        shutdown.cancel();
        task.await.expect("consumer task");
    }

    #[tokio::test]
    async fn a_handler_that_recovers_acks_on_redelivery() {
        let bus = MemoryBus::new(3);
        let shutdown = CancellationToken::new();
        let (handler, mut rx) = recorder("a", 1);
        let task = spawn_consumer(
            &bus,
            subscription("test.flaky", &["#"], Fanout::Shared),
            handler,
            &shutdown,
        );
        wait_for_queues(&bus, 1).await;

        bus.publish(&event("routing.agent.logged_in"))
            .await
            .expect("publish");
        assert_eq!(next(&mut rx).await.1.redeliveries, 0);
        assert_eq!(next(&mut rx).await.1.redeliveries, 1);
        assert_quiet(&mut rx).await;
        assert!(bus.dead_letters().is_empty());

        shutdown.cancel();
        task.await.expect("consumer task");
    }

    #[tokio::test]
    async fn shutdown_returns_after_finishing_the_event_in_hand() {
        let bus = MemoryBus::new(5);
        let shutdown = CancellationToken::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handler = Arc::new(Recorder {
            consumer: "slow",
            failures: 0,
            delay: Duration::from_millis(200),
            deliveries: tx,
        });
        let sub = subscription("test.shutdown", &["#"], Fanout::Shared);
        let task = spawn_consumer(&bus, sub.clone(), handler, &shutdown);
        wait_for_queues(&bus, 1).await;

        let first = event("ticketing.ticket.created");
        let second = event("ticketing.ticket.updated");
        bus.publish(&first).await.expect("publish");
        bus.publish(&second).await.expect("publish");
        // The first event is in the handler now; stop while it sleeps.
        tokio::time::sleep(Duration::from_millis(50)).await;
        shutdown.cancel();
        tokio::time::timeout(WAIT, task)
            .await
            .expect("consume returns after shutdown")
            .expect("consumer task");

        // The event in hand was finished (and acked); the next one was not started.
        assert_eq!(next(&mut rx).await.1.id, first.id);
        assert_quiet(&mut rx).await;

        // The untouched event is still queued for the next consumer.
        let restart = CancellationToken::new();
        let (handler, mut rx) = recorder("a", 0);
        let task = spawn_consumer(&bus, sub, handler, &restart);
        assert_eq!(next(&mut rx).await.1.id, second.id);
        assert_quiet(&mut rx).await;
        restart.cancel();
        task.await.expect("consumer task");
    }

    #[tokio::test]
    async fn idle_consumer_returns_on_shutdown() {
        let bus = MemoryBus::new(5);
        let shutdown = CancellationToken::new();
        let (handler, _rx) = recorder("a", 0);
        let task = spawn_consumer(
            &bus,
            subscription("test.idle", &["#"], Fanout::EveryReplica),
            handler,
            &shutdown,
        );
        wait_for_queues(&bus, 1).await;
        shutdown.cancel();
        tokio::time::timeout(WAIT, task)
            .await
            .expect("consume returns after shutdown")
            .expect("consumer task");
        bus.check().await.expect("memory bus is always ready");
    }
}
