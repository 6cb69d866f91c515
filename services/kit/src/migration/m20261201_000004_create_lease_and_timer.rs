use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Lease::Table)
                    .if_not_exists()
                    .col(string(Lease::Name).primary_key())
                    .col(string(Lease::Holder))
                    .col(big_integer(Lease::Epoch))
                    .col(big_integer(Lease::ExpiresAtMs))
                    .col(string(Lease::Address))
                    .col(big_integer(Lease::AcquiredAtMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Timer::Table)
                    .if_not_exists()
                    .col(string(Timer::Key).primary_key())
                    .col(string(Timer::Kind))
                    .col(big_integer(Timer::DueAtMs))
                    .col(text(Timer::Payload))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_timer_due_at_ms")
                    .table(Timer::Table)
                    .col(Timer::DueAtMs)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Timer::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Lease::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Lease {
    Table,
    Name,
    Holder,
    Epoch,
    ExpiresAtMs,
    Address,
    AcquiredAtMs,
}

#[derive(DeriveIden)]
enum Timer {
    Table,
    Key,
    Kind,
    DueAtMs,
    Payload,
}
