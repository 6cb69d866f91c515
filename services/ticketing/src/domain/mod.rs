//! Ticketing's rules, free of I/O: the status machine, numbers, and the
//! shapes of configuration.

pub mod number;
pub mod order;
pub mod setup;
pub mod sla;
