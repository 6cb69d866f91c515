//! Identity's schema. The platform tables (outbox, inbox, idempotency keys) come first.

mod m20261123_000001_create_customers;
mod m20261123_000002_create_api_clients;

use sea_orm_migration::{MigrationTrait, MigratorTrait};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations = hotline_kit::migration::platform_migrations();
        migrations.push(Box::new(m20261123_000001_create_customers::Migration));
        migrations.push(Box::new(m20261123_000002_create_api_clients::Migration));
        migrations
    }
}
