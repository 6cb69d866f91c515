//! Routing's rules and decisions, with no I/O.

pub mod command;
pub mod expr;
pub mod model;
pub mod router;
