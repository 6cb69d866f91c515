//! Identity through its public interfaces: REST, gRPC, events and the cache, on
//! the embedded backends and on PostgreSQL + RabbitMQ + Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod auth;
mod billing;
mod customers;
mod events;
mod grpc;
mod invalid_input;
mod outages;
mod platform;
