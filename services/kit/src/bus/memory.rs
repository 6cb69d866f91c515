//! The in-process bus of the embedded mode: a topic exchange with one queue per
//! subscription, the same at-least-once contract as the RabbitMQ backend.
//!
//! - A `Fanout::Shared` queue is named after the subscription and outlives its
//!   consumers; consumers with that name compete for its events. It exists from
//!   `declare` (or the first `consume`) of the name.
//! - A `Fanout::EveryReplica` queue belongs to one `consume` call and goes away
//!   with it.
//! - A failing handler is retried with backoff (`settle`); at the delivery limit
//!   the event becomes a dead letter. An event no queue is bound for is kept as
//!   an `UNROUTABLE` dead letter.
//! - With a spool file, `close` writes the shared queues and the dead letters to
//!   it and the next start takes them back, so a restart loses nothing that was
//!   published (a crash still loses what was in memory: the embedded mode is one
//!   process on one machine).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{
    Backlog, Bus, BusError, DeadLetter, DeadLetterAction, DeadLetterFilter, Event, EventHandler,
    Fanout, RetryPolicy, Settlement, Subscription, UNROUTABLE, settle, topic_matches,
};

/// In-process topic exchange; clones share the same queues.
#[derive(Clone)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

struct Inner {
    retry: RetryPolicy,
    /// The exchange its spans name (the configured `bus.exchange`).
    exchange_name: String,
    spool: Option<PathBuf>,
    /// Held while this bus owns the spool, so a second process can't take it.
    _spool_lock: Option<std::fs::File>,
    exchange: Mutex<Exchange>,
    dead_letters: Mutex<Vec<DeadLetter>>,
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
    /// The subscription it was made for.
    name: String,
    patterns: HashSet<String>,
    queue: Arc<Queue>,
}

struct Queue {
    events: Mutex<VecDeque<Event>>,
    /// One permit per enqueued event, so a waiting consumer wakes for each.
    ready: Notify,
}

impl Queue {
    fn new() -> Self {
        Self {
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

/// What the spool file holds between two runs.
#[derive(Default, Serialize, Deserialize)]
struct Spool {
    queues: BTreeMap<String, SpooledQueue>,
    dead_letters: Vec<DeadLetter>,
}

#[derive(Default, Serialize, Deserialize)]
struct SpooledQueue {
    bindings: Vec<String>,
    events: Vec<Event>,
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every
/// critical section here is a single push, pop or insert).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryBus {
    /// A bus that lives and dies with the process (tests).
    pub fn new(retry: RetryPolicy) -> Self {
        Self::build(retry, super::DEFAULT_EXCHANGE, None, None)
    }

    /// A bus that takes back what `path` holds and writes its queues and dead
    /// letters there on `close`.
    /// A second bus on the same spool (another process) is refused.
    /// `exchange` names the bus in spans, as RabbitMQ's exchange would be.
    pub fn with_spool(retry: RetryPolicy, path: &Path, exchange: &str) -> Result<Self, BusError> {
        let lock_path = path.with_extension("lock");
        let owner = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| BusError::Spool(format!("{}: {e}", lock_path.display())))?;
        owner.try_lock().map_err(|_busy| {
            BusError::Spool(format!(
                "{} is in use by a running hotline; stop it first",
                path.display()
            ))
        })?;
        let bus = Self::build(retry, exchange, Some(path.to_owned()), Some(owner));
        let spool: Spool = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| BusError::Spool(format!("{}: {e}", path.display())))?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Spool::default(),
            Err(error) => return Err(BusError::Spool(format!("{}: {error}", path.display()))),
        };
        let mut restored = 0;
        for (name, spooled) in spool.queues {
            let queue = bus.named_queue(&name, &spooled.bindings);
            restored += spooled.events.len();
            for event in spooled.events {
                queue.push_back(event);
            }
        }
        let dead = spool.dead_letters.len();
        *lock(&bus.inner.dead_letters) = spool.dead_letters;
        if restored > 0 || dead > 0 {
            info!(restored, dead_letters = dead, spool = %path.display(), "took back spooled events");
        }
        Ok(bus)
    }

    fn build(
        retry: RetryPolicy,
        exchange: &str,
        spool: Option<PathBuf>,
        lock: Option<std::fs::File>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                retry,
                exchange_name: exchange.to_owned(),
                spool,
                _spool_lock: lock,
                exchange: Mutex::new(Exchange::default()),
                dead_letters: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The shared queue `name`, created if needed, bound to `patterns` too.
    fn named_queue(&self, name: &str, patterns: &[String]) -> Arc<Queue> {
        let mut exchange = lock(&self.inner.exchange);
        let binding = exchange
            .queues
            .entry(QueueKey::Named(name.to_owned()))
            .or_insert_with(|| Binding {
                name: name.to_owned(),
                patterns: HashSet::new(),
                queue: Arc::new(Queue::new()),
            });
        binding.patterns.extend(patterns.iter().cloned());
        Arc::clone(&binding.queue)
    }

    /// Declares (or joins) the subscription's queue and adds its bindings.
    fn attach(&self, subscription: &Subscription) -> (QueueKey, Arc<Queue>) {
        if subscription.fanout == Fanout::Shared {
            let queue = self.named_queue(&subscription.name, &subscription.bindings);
            return (QueueKey::Named(subscription.name.clone()), queue);
        }
        let mut exchange = lock(&self.inner.exchange);
        exchange.next_transient_id += 1;
        let key = QueueKey::Transient(exchange.next_transient_id);
        let queue = Arc::new(Queue::new());
        exchange.queues.insert(
            key.clone(),
            Binding {
                name: subscription.name.clone(),
                patterns: subscription.bindings.iter().cloned().collect(),
                queue: Arc::clone(&queue),
            },
        );
        (key, queue)
    }

    fn detach(&self, key: &QueueKey) {
        if let QueueKey::Transient(_) = key {
            lock(&self.inner.exchange).queues.remove(key);
        }
    }

    /// Keeps the in-process bus's memory bounded: past `MAX_UNROUTABLE` events
    /// no queue was bound for, the oldest go (counted, warned about once). A
    /// process runs every service, so an event kind nobody consumes in it has
    /// no consumer anywhere.
    fn forget_oldest_unroutable(&self) {
        let mut letters = lock(&self.inner.dead_letters);
        if letters.len() <= MAX_UNROUTABLE {
            return;
        }
        let unroutable = letters.iter().filter(|l| l.queue == UNROUTABLE).count();
        if unroutable <= MAX_UNROUTABLE {
            return;
        }
        // A tenth at a time, so the scan above runs once per thousand events.
        let mut extra = unroutable - MAX_UNROUTABLE + MAX_UNROUTABLE / 10;
        let dropped = extra;
        letters.retain(|letter| {
            if extra > 0 && letter.queue == UNROUTABLE {
                extra -= 1;
                false
            } else {
                true
            }
        });
        crate::metrics::record_unroutable_dropped(dropped as u64);
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            warn!(
                kept = MAX_UNROUTABLE,
                "the embedded bus keeps only the newest unroutable events; older ones are dropped"
            );
        });
    }

    fn bury(&self, queue: &str, error: String, event: Event) {
        lock(&self.inner.dead_letters).push(DeadLetter {
            queue: queue.to_owned(),
            error,
            failed_at: Utc::now(),
            event,
        });
    }

    fn write_spool(&self, path: &Path) -> Result<usize, BusError> {
        let mut spool = Spool::default();
        let mut kept = 0;
        for (key, binding) in &lock(&self.inner.exchange).queues {
            if let QueueKey::Named(name) = key {
                let events: Vec<Event> = lock(&binding.queue.events).iter().cloned().collect();
                kept += events.len();
                let mut bindings: Vec<String> = binding.patterns.iter().cloned().collect();
                bindings.sort();
                spool
                    .queues
                    .insert(name.clone(), SpooledQueue { bindings, events });
            }
        }
        spool.dead_letters = lock(&self.inner.dead_letters).clone();
        kept += spool.dead_letters.len();
        let bytes = serde_json::to_vec(&spool).map_err(|e| BusError::Spool(e.to_string()))?;
        let partial = path.with_extension("partial");
        std::fs::write(&partial, bytes)
            .and_then(|()| std::fs::rename(&partial, path))
            .map_err(|e| BusError::Spool(format!("{}: {e}", path.display())))?;
        Ok(kept)
    }

    #[cfg(test)]
    fn queue_count(&self) -> usize {
        lock(&self.inner.exchange).queues.len()
    }
}

impl fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBus")
            .field("retry", &self.inner.retry)
            .field("spool", &self.inner.spool)
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

/// The event in hand. If it is not settled (shutdown during a retry wait, the
/// consuming future dropped, the handler panicking) it goes back to the head of
/// its queue, as an unacked message does when a broker channel closes.
struct InFlight<'a> {
    queue: &'a Queue,
    event: Option<Event>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(mut event) = self.event.take() {
            event.redeliveries = event.redeliveries.saturating_add(1);
            self.queue.push_front(event);
        }
    }
}

/// Unroutable events the in-process bus keeps at most.
pub const MAX_UNROUTABLE: usize = 10_000;

#[async_trait]
impl Bus for MemoryBus {
    fn declare(&self, subscriptions: &[Subscription]) {
        for subscription in subscriptions {
            if subscription.fanout == Fanout::Shared {
                self.named_queue(&subscription.name, &subscription.bindings);
            }
        }
    }

    async fn publish(&self, event: &Event) -> Result<(), BusError> {
        let (span, traceparent) =
            super::publish_span(super::IN_PROCESS, &self.inner.exchange_name, event);
        span.in_scope(|| {
            let mut routed = false;
            for binding in lock(&self.inner.exchange).queues.values() {
                if binding
                    .patterns
                    .iter()
                    .any(|pattern| topic_matches(pattern, &event.kind))
                {
                    let mut copy = event.clone();
                    copy.redeliveries = 0;
                    copy.traceparent.clone_from(&traceparent);
                    binding.queue.push_back(copy);
                    routed = true;
                }
            }
            if !routed {
                super::note_unroutable(event);
                self.bury(
                    UNROUTABLE,
                    format!("no queue is bound for {}", event.kind),
                    event.clone(),
                );
                self.forget_oldest_unroutable();
            }
        });
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
                queue: &queue,
                event: Some(event),
            };
            let Some(event) = in_flight.event.as_mut() else {
                continue;
            };
            match settle(
                handler.as_ref(),
                event,
                &subscription.name,
                super::IN_PROCESS,
                &self.inner.retry,
                &shutdown,
            )
            .await
            {
                Settlement::Handled => in_flight.event = None,
                Settlement::DeadLetter(error) => {
                    if let Some(event) = in_flight.event.take() {
                        self.bury(&subscription.name, error, event);
                    }
                }
                // Dropping the guard with the event inside puts it back.
                Settlement::Requeue => drop(in_flight),
            }
        }
    }

    async fn check(&self) -> Result<(), BusError> {
        Ok(())
    }

    async fn backlog(&self) -> Result<Vec<Backlog>, BusError> {
        let mut queues: Vec<Backlog> = lock(&self.inner.exchange)
            .queues
            .values()
            .map(|binding| Backlog {
                queue: binding.name.clone(),
                ready: lock(&binding.queue.events).len() as u64,
            })
            .collect();
        queues.sort_by(|a, b| a.queue.cmp(&b.queue));
        Ok(queues)
    }

    async fn dead_letters(
        &self,
        action: DeadLetterAction,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<DeadLetter>, BusError> {
        let selected: Vec<DeadLetter> = {
            let mut letters = lock(&self.inner.dead_letters);
            if action == DeadLetterAction::List {
                return Ok(letters
                    .iter()
                    .filter(|letter| filter.matches(letter))
                    .cloned()
                    .collect());
            }
            let (selected, kept) = letters.drain(..).partition(|letter| filter.matches(letter));
            *letters = kept;
            selected
        };
        if action == DeadLetterAction::Replay {
            for letter in &selected {
                let mut event = letter.event.clone();
                event.redeliveries = 0;
                if letter.queue == UNROUTABLE {
                    self.publish(&event).await?;
                } else {
                    self.named_queue(&letter.queue, &[]).push_back(event);
                }
            }
        }
        Ok(selected)
    }

    async fn close(&self) {
        let Some(path) = &self.inner.spool else {
            return;
        };
        match self.write_spool(path) {
            Ok(kept) => info!(kept, spool = %path.display(), "event bus spooled"),
            Err(error) => {
                warn!(error = %error, "spooling the event bus failed; queued events are lost")
            }
        }
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
    use crate::bus::{
        Bus, DeadLetterAction, DeadLetterFilter, Event, EventHandler, Fanout, HandlerError,
        RetryPolicy, Subscription, UNROUTABLE,
    };

    const WAIT: Duration = Duration::from_secs(5);

    /// Retries quickly enough for a test, with a visible backoff.
    fn retry(delivery_limit: u32) -> RetryPolicy {
        RetryPolicy {
            delivery_limit,
            initial_delay: Duration::from_millis(40),
            max_delay: Duration::from_millis(200),
        }
    }

    async fn all_dead_letters(bus: &MemoryBus) -> Vec<crate::bus::DeadLetter> {
        bus.dead_letters(DeadLetterAction::List, &DeadLetterFilter::default())
            .await
            .expect("list")
    }

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
        let bus = MemoryBus::new(retry(5));
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
        crate::telemetry::init_for_tests();
        let bus = MemoryBus::new(retry(5));
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

        let (_, mut received) = next(&mut rx).await;
        // The publish span's context: the same trace, a span of its own.
        let carried = received.traceparent.take().expect("a traceparent");
        assert_eq!(
            crate::telemetry::trace_id(&carried),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_ne!(Some(&carried), sent.traceparent.as_ref());
        sent.traceparent = None;
        assert_eq!(received, sent);

        shutdown.cancel();
        task.await.expect("consumer task");
    }

    #[tokio::test]
    async fn unroutable_events_are_kept_up_to_a_bound_the_newest_first() {
        let bus = MemoryBus::new(retry(5));
        use super::MAX_UNROUTABLE;
        let total = MAX_UNROUTABLE + 50;
        let mut last = None;
        for _ in 0..total {
            let event = Event::new("nobody.listens.here", "/test", Vec::new());
            last = Some(event.id);
            bus.publish(&event).await.unwrap();
        }
        let kept = bus
            .dead_letters(DeadLetterAction::List, &DeadLetterFilter::default())
            .await
            .unwrap();
        assert!(
            kept.len() <= MAX_UNROUTABLE && kept.len() >= MAX_UNROUTABLE * 8 / 10,
            "{}",
            kept.len()
        );
        assert_eq!(kept.last().map(|l| l.event.id), last, "the newest stay");
    }

    #[tokio::test]
    async fn keeps_events_for_a_declared_queue_and_unroutable_ones_as_dead_letters() {
        let bus = MemoryBus::new(retry(5));
        let sub = subscription("test.durable", &["ticketing.#"], Fanout::Shared);

        // No queue yet: kept as an unroutable dead letter, not dropped.
        let stray = event("ticketing.ticket.created");
        bus.publish(&stray).await.expect("publish");
        let dead = all_dead_letters(&bus).await;
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].queue, UNROUTABLE);
        assert_eq!(dead[0].event.id, stray.id);

        // Declared before its consumer ever ran: keeps what is published.
        bus.declare(std::slice::from_ref(&sub));
        let early = event("ticketing.ticket.updated");
        bus.publish(&early).await.expect("publish");

        let first_run = CancellationToken::new();
        let (handler, mut rx) = recorder("a", 0);
        let task = spawn_consumer(&bus, sub.clone(), handler, &first_run);
        assert_eq!(next(&mut rx).await.1.id, early.id);
        first_run.cancel();
        task.await.expect("consumer task");
        assert_quiet(&mut rx).await;

        // The queue outlives its consumer and keeps what arrives meanwhile.
        let kept = event("ticketing.ticket.closed");
        bus.publish(&kept).await.expect("publish");

        // Replaying the unroutable event now routes it to the declared queue.
        let replayed = bus
            .dead_letters(DeadLetterAction::Replay, &DeadLetterFilter::default())
            .await
            .expect("replay");
        assert_eq!(replayed.len(), 1);
        assert!(all_dead_letters(&bus).await.is_empty());

        let second_run = CancellationToken::new();
        let (handler, mut rx) = recorder("a", 0);
        let task = spawn_consumer(&bus, sub, handler, &second_run);
        assert_eq!(next(&mut rx).await.1.id, kept.id);
        assert_eq!(next(&mut rx).await.1.id, stray.id);
        assert_quiet(&mut rx).await;
        second_run.cancel();
        task.await.expect("consumer task");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn competing_consumers_get_each_event_once() {
        let bus = MemoryBus::new(retry(5));
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
        let bus = MemoryBus::new(retry(5));
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
        let bus = MemoryBus::new(retry(3));
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

        let mut arrivals = Vec::new();
        for attempt in 0..3 {
            let (_, e) = next(&mut rx).await;
            arrivals.push(std::time::Instant::now());
            assert_eq!(e.id, sent.id);
            assert_eq!(e.redeliveries, attempt);
        }
        assert_quiet(&mut rx).await;
        // Retried with backoff (40 ms, then 80 ms), not at once.
        assert!(arrivals[1] - arrivals[0] >= Duration::from_millis(40));
        assert!(arrivals[2] - arrivals[1] >= Duration::from_millis(80));

        let dead = all_dead_letters(&bus).await;
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].queue, "test.poison");
        assert!(
            dead[0].error.contains("refusing delivery 2"),
            "{}",
            dead[0].error
        );
        assert_eq!(dead[0].event.id, sent.id);
        assert_eq!(dead[0].event.data, sent.data);

        // Replay hands it back to its queue, where the handler fails again.
        let replayed = bus
            .dead_letters(
                DeadLetterAction::Replay,
                &DeadLetterFilter {
                    queue: Some("test.poison".into()),
                    ids: vec![sent.id],
                },
            )
            .await
            .expect("replay");
        assert_eq!(replayed.len(), 1);
        assert_eq!(next(&mut rx).await.1.redeliveries, 0);

        shutdown.cancel();
        task.await.expect("consumer task");
    }

    #[tokio::test]
    async fn a_handler_that_recovers_acks_on_redelivery() {
        let bus = MemoryBus::new(retry(3));
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
        assert!(all_dead_letters(&bus).await.is_empty());

        shutdown.cancel();
        task.await.expect("consumer task");
    }

    #[tokio::test]
    async fn shutdown_returns_after_finishing_the_event_in_hand() {
        let bus = MemoryBus::new(retry(5));
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
        let bus = MemoryBus::new(retry(5));
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

    #[tokio::test]
    async fn shutdown_during_a_retry_wait_requeues_the_event() {
        let bus = MemoryBus::new(RetryPolicy {
            delivery_limit: 5,
            initial_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(30),
        });
        let shutdown = CancellationToken::new();
        let (handler, mut rx) = recorder("a", 1);
        let sub = subscription("test.patient", &["#"], Fanout::Shared);
        let task = spawn_consumer(&bus, sub.clone(), handler, &shutdown);
        wait_for_queues(&bus, 1).await;
        let sent = event("routing.task.created");
        bus.publish(&sent).await.expect("publish");
        assert_eq!(next(&mut rx).await.1.redeliveries, 0);
        shutdown.cancel();
        tokio::time::timeout(WAIT, task)
            .await
            .expect("consume returns without waiting out the backoff")
            .expect("consumer task");
        assert!(all_dead_letters(&bus).await.is_empty());

        // Back in the queue with its delivery counted.
        let restart = CancellationToken::new();
        let (handler, mut rx) = recorder("a", 1);
        let task = spawn_consumer(&bus, sub, handler, &restart);
        let (_, again) = next(&mut rx).await;
        assert_eq!((again.id, again.redeliveries), (sent.id, 1));
        restart.cancel();
        task.await.expect("consumer task");
    }

    #[tokio::test]
    async fn a_restart_takes_back_queued_events_and_dead_letters_from_the_spool() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bus.spool");
        let sub = subscription("test.spooled", &["identity.#"], Fanout::Shared);
        let queued = event("identity.customer.created");
        let stray = event("reporting.nobody.listens");
        {
            let bus =
                MemoryBus::with_spool(retry(3), &path, "hotline.events").expect("empty spool");
            assert!(
                MemoryBus::with_spool(retry(3), &path, "hotline.events").is_err(),
                "one owner at a time"
            );
            bus.declare(std::slice::from_ref(&sub));
            bus.publish(&queued).await.expect("publish");
            bus.publish(&stray).await.expect("publish");
            bus.close().await;
        }
        let bus = MemoryBus::with_spool(retry(3), &path, "hotline.events").expect("spool");
        let dead = all_dead_letters(&bus).await;
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].event, stray);
        // The queue and its bindings came back too: new events still route.
        let later = event("identity.customer.updated");
        bus.publish(&later).await.expect("publish");
        let shutdown = CancellationToken::new();
        let (handler, mut rx) = recorder("a", 0);
        let task = spawn_consumer(&bus, sub, handler, &shutdown);
        assert_eq!(next(&mut rx).await.1, queued);
        assert_eq!(next(&mut rx).await.1.id, later.id);
        shutdown.cancel();
        task.await.expect("consumer task");

        std::fs::write(&path, b"not json").expect("write");
        assert!(MemoryBus::with_spool(retry(3), &path, "hotline.events").is_err());
    }
}
