//! Listening to events the way another service would: a queue of its own.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hotline_kit::bus::{
    AmqpBus, AmqpSettings, Bus, BusError, Event, EventHandler, Fanout, HandlerError, Subscription,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Keeps every event it is handed, in arrival order.
#[derive(Default)]
pub struct EventRecorder(Mutex<Vec<Event>>);

impl EventRecorder {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    pub fn kinds(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.kind.clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl EventHandler for EventRecorder {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

/// A consumer recording `subscription` on `bus` until the token is cancelled.
pub struct Recording {
    pub recorder: Arc<EventRecorder>,
    pub stop: CancellationToken,
    pub task: JoinHandle<Result<(), BusError>>,
}

impl Recording {
    pub fn start(bus: Arc<dyn Bus>, subscription: Subscription) -> Self {
        let recorder = Arc::new(EventRecorder::default());
        let stop = CancellationToken::new();
        let (handler, token) = (recorder.clone(), stop.clone());
        let task = tokio::spawn(async move { bus.consume(subscription, handler, token).await });
        Self {
            recorder,
            stop,
            task,
        }
    }

    /// Stops consuming and returns what was recorded.
    pub async fn finish(self) -> Vec<Event> {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
        self.recorder.events()
    }
}

/// A shared queue `name` on the broker at `amqp_url`, bound to `patterns` and
/// existing once this returns, with a bus to consume it later.
pub async fn broker_queue(
    amqp_url: &str,
    name: &str,
    patterns: &[&str],
) -> (Arc<dyn Bus>, Subscription) {
    let bus = AmqpBus::new(AmqpSettings {
        url: amqp_url.to_owned(),
        ..AmqpSettings::default()
    });
    let subscription = Subscription {
        name: name.to_owned(),
        bindings: patterns.iter().map(|p| (*p).to_owned()).collect(),
        fanout: Fanout::Shared,
    };
    bus.declare(std::slice::from_ref(&subscription));
    bus.check().await.expect("the broker answers");
    (Arc::new(bus), subscription)
}
