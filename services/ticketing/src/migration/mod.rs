//! Ticketing's schema. The platform tables (outbox, inbox, idempotency keys,
//! leases, timers) come first.

mod m20261202_000002_create_ticketing;
mod m20261203_000001_add_sla;
mod m20261204_000001_add_dispatch;
mod m20261205_000001_add_sms;
mod m20261206_000001_add_webhooks;
mod m20261207_000001_add_sms_parts;

use sea_orm_migration::{MigrationTrait, MigratorTrait};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations = hotline_kit::migration::platform_migrations();
        migrations.push(Box::new(m20261202_000002_create_ticketing::Migration));
        migrations.push(Box::new(m20261203_000001_add_sla::Migration));
        migrations.push(Box::new(m20261204_000001_add_dispatch::Migration));
        migrations.push(Box::new(m20261205_000001_add_sms::Migration));
        migrations.push(Box::new(m20261206_000001_add_webhooks::Migration));
        migrations.push(Box::new(m20261207_000001_add_sms_parts::Migration));
        migrations
    }
}
