//! Routing / ACD: who handles every piece of work in the center — inbound
//! calls, callbacks, outbound calls, any work item — decided by one router at
//! a time across replicas, offered to agents one at a time, and measured live.

pub mod component;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod leader;
pub mod migration;
pub mod peers;
pub mod rest;
pub mod service;
pub mod store;
pub mod views;

pub use component::RoutingComponent;
pub use config::RoutingConfig;
