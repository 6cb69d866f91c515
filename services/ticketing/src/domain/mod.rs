//! Ticketing's rules, free of I/O: the status machine, numbers, SLA clocks,
//! dispatch, and the shapes of configuration.

pub mod dispatch;
pub mod number;
pub mod order;
pub mod setup;
pub mod sla;
pub mod sms_command;
pub mod sms_text;
pub mod template;
