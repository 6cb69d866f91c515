use sea_orm_migration::{prelude::*, schema::*};

/// The SMSC's id of each part sent over SMPP, so its delivery receipt finds
/// the text it belongs to.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SmsPart::Table)
                    .if_not_exists()
                    .col(string(SmsPart::ProviderId).primary_key())
                    .col(uuid(SmsPart::SmsMessageId))
                    .col(integer(SmsPart::Part))
                    .col(string(SmsPart::Status))
                    .col(timestamp_with_time_zone(SmsPart::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_sms_part_message")
                    .table(SmsPart::Table)
                    .col(SmsPart::SmsMessageId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SmsPart::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SmsPart {
    Table,
    ProviderId,
    SmsMessageId,
    Part,
    Status,
    CreatedAt,
}
