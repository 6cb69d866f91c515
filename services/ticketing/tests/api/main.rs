//! Ticketing through its public interfaces — REST, gRPC and its events —
//! beside a real identity, on the embedded backends and on PostgreSQL +
//! RabbitMQ + Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod dispatch;
mod events;
mod grpc;
mod orders;
mod outages;
mod partners;
mod receiver;
mod sla;
mod smpp;
mod sms;
mod webhooks;
