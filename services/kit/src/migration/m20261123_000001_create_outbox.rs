use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OutboxEvent::Table)
                    .if_not_exists()
                    .col(big_integer(OutboxEvent::Seq).auto_increment().primary_key())
                    .col(uuid(OutboxEvent::Id).unique_key())
                    .col(string(OutboxEvent::Kind))
                    .col(string(OutboxEvent::Source))
                    .col(string_null(OutboxEvent::Subject))
                    .col(timestamp_with_time_zone(OutboxEvent::Time))
                    .col(blob(OutboxEvent::Data))
                    .col(string_null(OutboxEvent::Traceparent))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OutboxEvent::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum OutboxEvent {
    Table,
    Seq,
    Id,
    Kind,
    Source,
    Subject,
    Time,
    Data,
    Traceparent,
}
