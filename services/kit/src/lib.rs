//! hotline-kit: the platform every Hotline service is built on — configuration,
//! telemetry, errors, the REST and gRPC servers, database, event bus with
//! outbox and inbox, cache and authentication.

pub mod auth;
pub mod bus;
pub mod cache;
pub mod calendar;
pub mod clock;
pub mod component;
pub mod config;
pub mod db;
pub mod error;
pub mod housekeeping;
pub mod idempotency;
pub mod inbox;
pub mod lease;
pub mod mask;
pub mod metrics;
pub mod migration;
pub mod openapi;
pub mod outbox;
pub mod platform;
pub mod rest;
pub mod server;
pub mod sse;
pub mod telemetry;
pub mod timers;

pub use error::{ApiError, ApiResult, ErrorCode};
