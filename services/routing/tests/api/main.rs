//! Routing through its public interfaces — REST with Server-Sent Events, gRPC
//! with streams, and its events — beside a real identity, on the embedded
//! backends and on PostgreSQL + RabbitMQ + Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod agents;
mod calls;
mod events;
mod grpc;
mod outages;
