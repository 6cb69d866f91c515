//! Where text messages leave the system: a provider (the dev sink, an HTTP
//! gateway) takes one message at a time from the `ticketing.sms` loop and
//! says what became of it.

mod http;
mod sink;

use async_trait::async_trait;
use uuid::Uuid;

pub use http::{HttpProvider, HttpSmsConfig};
pub use sink::Sink;

use crate::domain::sms_text::Encoding;

/// One queued message, as the provider sends it.
#[derive(Clone, Debug)]
pub struct OutboundSms {
    /// Stable across resends: receivers can drop a repeat.
    pub id: Uuid,
    /// E.164.
    pub to: String,
    /// The whole text, for gateways that split it themselves...
    pub text: String,
    /// ...and its parts, for those that don't.
    pub parts: Vec<String>,
    pub encoding: Encoding,
}

/// What the provider did with a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitted {
    /// The provider's ids of the parts.
    pub part_ids: Vec<String>,
    /// The provider knows it reached the phone (the sink does at once).
    pub delivered: bool,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum SubmitError {
    /// Worth trying again later (a lost link, a throttle).
    #[error("transient: {0}")]
    Transient(String),
    /// Never going through (a barred number, a refused text).
    #[error("permanent: {0}")]
    Permanent(String),
}

#[async_trait]
pub trait SmsProvider: Send + Sync {
    fn name(&self) -> &'static str;
    async fn submit(&self, message: &OutboundSms) -> Result<Submitted, SubmitError>;
}
