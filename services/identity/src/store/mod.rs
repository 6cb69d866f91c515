//! Identity's tables (sea-orm entities) and the queries over them.

pub mod api_client;
pub mod audit_entry;
pub mod customer;
pub mod customer_phone;
pub mod queries;
pub mod rekey;
pub mod signing_key;
pub mod timeline_entry;
