//! The loops one replica at a time runs, each under a lease of its own.

pub mod sms;
pub mod timers;
pub mod webhooks;
