//! Ticketing: work orders opened by agents, dispatched by region to in-house
//! technicians and partner repair shops, worked and resolved by them, with
//! every step in the order's history.

pub mod component;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod input;
pub mod migration;
pub mod rest;
pub mod service;
pub mod sms;
pub mod store;
pub mod views;
pub mod webhooks;
pub mod workers;

pub use component::TicketingComponent;
pub use config::TicketingConfig;
