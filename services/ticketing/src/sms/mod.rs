//! Where text messages leave the system: a provider (the dev sink, an HTTP
//! gateway, an SMSC over SMPP) takes messages from the `ticketing.sms` loop,
//! up to its window at once, and says what became of each.

mod http;
mod sink;
pub mod smpp;

use async_trait::async_trait;
use uuid::Uuid;

pub use http::{HttpProvider, HttpSmsConfig};
pub use sink::Sink;
pub use smpp::{Report, SmppConfig, SmppProvider};

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

/// An SMSC's word on one part, by its id for the part.
#[derive(Clone, Debug)]
pub struct Receipt {
    pub part_id: String,
    /// Reached the phone; else it never will.
    pub delivered: bool,
    /// As the SMSC said it (DELIVRD, UNDELIV, …).
    pub state: String,
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
    /// Messages the loop may have in flight at once.
    fn window(&self) -> usize;
    async fn submit(&self, message: &OutboundSms) -> Result<Submitted, SubmitError>;
}
