//! Server-Sent Events for web apps: a response that streams named JSON events
//! with keep-alive comments, and ends when the process begins shutting down so
//! its clients reconnect to a replica that stays.

use std::time::Duration;

use actix_web::Responder;
use actix_web_lab::sse::{self, Sse};
use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

/// How long a client waits before reconnecting after the stream ends.
const RETRY: Duration = Duration::from_secs(1);

/// One event: its name (`event:`), an optional id (`id:`) and a JSON payload.
#[derive(Clone, Debug, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: serde_json::Value,
}

impl SseEvent {
    pub fn new(event: impl Into<String>, data: serde_json::Value) -> Self {
        Self {
            event: event.into(),
            id: None,
            data,
        }
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
}

/// A `text/event-stream` response of `events`, with a keep-alive comment every
/// `keep_alive` so proxies keep the connection open, ending once `until` is cancelled.
pub fn stream<S>(events: S, keep_alive: Duration, until: CancellationToken) -> impl Responder
where
    S: Stream<Item = SseEvent> + 'static,
{
    let events = events.take_until(until.cancelled_owned()).map(|event| {
        let mut data = sse::Data::new(event.data.to_string()).event(event.event);
        if let Some(id) = event.id {
            data = data.id(id);
        }
        sse::Event::Data(data)
    });
    Sse::from_infallible_stream(events)
        .with_keep_alive(keep_alive)
        .with_retry_duration(RETRY)
}
