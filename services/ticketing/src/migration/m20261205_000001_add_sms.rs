use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SmsMessage::Table)
                    .if_not_exists()
                    .col(uuid(SmsMessage::Id).primary_key())
                    .col(uuid_null(SmsMessage::WorkOrderId))
                    .col(uuid_null(SmsMessage::AssigneeId))
                    .col(string(SmsMessage::Purpose))
                    .col(string(SmsMessage::ToPhone))
                    .col(text(SmsMessage::Body))
                    .col(string(SmsMessage::Encoding))
                    .col(integer(SmsMessage::Parts))
                    .col(string(SmsMessage::Status))
                    .col(string_null(SmsMessage::Provider))
                    .col(json_null(SmsMessage::PartIds))
                    .col(integer(SmsMessage::Attempts))
                    .col(timestamp_with_time_zone(SmsMessage::NextAttemptAt))
                    .col(string_null(SmsMessage::Error))
                    .col(timestamp_with_time_zone(SmsMessage::CreatedAt))
                    .col(timestamp_with_time_zone_null(SmsMessage::SentAt))
                    .col(timestamp_with_time_zone_null(SmsMessage::DeliveredAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_sms_message_due")
                    .table(SmsMessage::Table)
                    .col(SmsMessage::Status)
                    .col(SmsMessage::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_sms_message_order")
                    .table(SmsMessage::Table)
                    .col(SmsMessage::WorkOrderId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SmsInbound::Table)
                    .if_not_exists()
                    .col(uuid(SmsInbound::Id).primary_key())
                    .col(string(SmsInbound::Provider))
                    .col(string(SmsInbound::FromPhone))
                    .col(text(SmsInbound::Body))
                    .col(timestamp_with_time_zone(SmsInbound::ReceivedAt))
                    .col(uuid_null(SmsInbound::AssigneeId))
                    .col(uuid_null(SmsInbound::WorkOrderId))
                    .col(string_null(SmsInbound::Command))
                    .col(string(SmsInbound::Outcome))
                    .col(uuid_null(SmsInbound::ReplyId))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SmsInbound::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(SmsMessage::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SmsMessage {
    Table,
    Id,
    WorkOrderId,
    AssigneeId,
    Purpose,
    ToPhone,
    Body,
    Encoding,
    Parts,
    Status,
    Provider,
    PartIds,
    Attempts,
    NextAttemptAt,
    Error,
    CreatedAt,
    SentAt,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum SmsInbound {
    Table,
    Id,
    Provider,
    FromPhone,
    Body,
    ReceivedAt,
    AssigneeId,
    WorkOrderId,
    Command,
    Outcome,
    ReplyId,
}
