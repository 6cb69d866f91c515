use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(InboxEvent::Table)
                    .if_not_exists()
                    .col(string(InboxEvent::Consumer))
                    .col(uuid(InboxEvent::EventId))
                    .col(timestamp_with_time_zone(InboxEvent::AppliedAt))
                    .primary_key(
                        Index::create()
                            .col(InboxEvent::Consumer)
                            .col(InboxEvent::EventId),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(InboxEvent::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum InboxEvent {
    Table,
    Consumer,
    EventId,
    AppliedAt,
}
