//! Customer identity: who is calling, their data and history, and the API
//! clients (and tokens) that may ask.

pub mod billing;
pub mod client_secret;
pub mod component;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod migration;
pub mod pii;
pub mod rest;
pub mod service;
pub mod store;
pub mod throttle;
pub mod tokens;
pub mod views;

pub use component::{GeneratedAdmin, IdentityComponent};
pub use config::IdentityConfig;
