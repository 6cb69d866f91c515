//! Tables every service has in its own schema: the outbox, the inbox,
//! idempotency keys, leases and durable timers. Services list these before their own migrations.

mod m20261123_000001_create_outbox;
mod m20261123_000002_create_inbox;
mod m20261123_000003_create_idempotency_key;
mod m20261201_000004_create_lease_and_timer;

use sea_orm_migration::MigrationTrait;

pub fn platform_migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(m20261123_000001_create_outbox::Migration),
        Box::new(m20261123_000002_create_inbox::Migration),
        Box::new(m20261123_000003_create_idempotency_key::Migration),
        Box::new(m20261201_000004_create_lease_and_timer::Migration),
    ]
}
