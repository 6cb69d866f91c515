use sea_orm_migration::{prelude::*, schema::*};

use crate::domain::model::default_activities;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Activity::Table)
                    .if_not_exists()
                    .col(string(Activity::Name).primary_key())
                    .col(boolean(Activity::Available))
                    .col(text(Activity::Description))
                    .to_owned(),
            )
            .await?;
        for activity in default_activities() {
            let mut insert = Query::insert();
            insert
                .into_table(Activity::Table)
                .columns([Activity::Name, Activity::Available, Activity::Description])
                .values([
                    activity.name.into(),
                    activity.available.into(),
                    activity.description.into(),
                ])
                .map_err(|error| DbErr::Custom(error.to_string()))?
                .on_conflict(OnConflict::column(Activity::Name).do_nothing().to_owned());
            manager.exec_stmt(insert.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Agent::Table)
                    .if_not_exists()
                    .col(uuid(Agent::Id).primary_key())
                    .col(string(Agent::Name))
                    .col(string_null(Agent::Login))
                    .col(json(Agent::Spec))
                    .col(string(Agent::Activity))
                    .col(timestamp_with_time_zone(Agent::ActivitySince))
                    .col(big_integer(Agent::Version))
                    .col(timestamp_with_time_zone(Agent::CreatedAt))
                    .col(timestamp_with_time_zone(Agent::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Queue::Table)
                    .if_not_exists()
                    .col(uuid(Queue::Id).primary_key())
                    .col(string(Queue::Name))
                    .col(json(Queue::Spec))
                    .col(big_integer(Queue::Version))
                    .col(timestamp_with_time_zone(Queue::CreatedAt))
                    .col(timestamp_with_time_zone(Queue::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EntryRule::Table)
                    .if_not_exists()
                    .col(integer(EntryRule::Position).primary_key())
                    .col(json(EntryRule::Rule))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Task::Table)
                    .if_not_exists()
                    .col(uuid(Task::Id).primary_key())
                    .col(string_null(Task::ExternalId))
                    .col(string(Task::Kind))
                    .col(string(Task::Channel))
                    .col(uuid(Task::QueueId))
                    .col(string(Task::Status))
                    .col(integer(Task::Priority))
                    .col(json(Task::Attributes))
                    .col(string_null(Task::CallingNumber))
                    .col(string_null(Task::DialledNumber))
                    .col(json(Task::Ivr))
                    .col(json_null(Task::Customer))
                    .col(string_null(Task::CustomerId))
                    .col(timestamp_with_time_zone(Task::CreatedAt))
                    .col(timestamp_with_time_zone(Task::QueuedAt))
                    .col(timestamp_with_time_zone(Task::RankAt))
                    .col(integer(Task::Step))
                    .col(json_null(Task::Reservation))
                    .col(timestamp_with_time_zone_null(Task::FirstOfferedAt))
                    .col(uuid_null(Task::AgentId))
                    .col(timestamp_with_time_zone_null(Task::AnsweredAt))
                    .col(timestamp_with_time_zone_null(Task::AssignedAt))
                    .col(timestamp_with_time_zone_null(Task::EndedAt))
                    .col(timestamp_with_time_zone_null(Task::WrapUpUntil))
                    .col(timestamp_with_time_zone_null(Task::CompletedAt))
                    .col(string_null(Task::Outcome))
                    .col(json(Task::DeclinedBy))
                    .col(json(Task::Visited))
                    .col(json_null(Task::Callback))
                    .col(timestamp_with_time_zone_null(Task::NotBefore))
                    .col(uuid_null(Task::ResumedFrom))
                    .col(uuid_null(Task::TargetAgent))
                    .col(big_integer(Task::Version))
                    .col(timestamp_with_time_zone(Task::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("idx_task_status", vec![Task::Status]),
            ("idx_task_external_id", vec![Task::ExternalId]),
            ("idx_task_created_at", vec![Task::CreatedAt, Task::Id]),
            (
                "idx_task_queue_created_at",
                vec![Task::QueueId, Task::CreatedAt],
            ),
            (
                "idx_task_agent_completed_at",
                vec![Task::AgentId, Task::CompletedAt],
            ),
        ] {
            let mut index = Index::create();
            index.if_not_exists().name(name).table(Task::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Reservation::Table)
                    .if_not_exists()
                    .col(uuid(Reservation::Id).primary_key())
                    .col(uuid(Reservation::TaskId))
                    .col(uuid(Reservation::AgentId))
                    .col(string(Reservation::Status))
                    .col(timestamp_with_time_zone(Reservation::OfferedAt))
                    .col(timestamp_with_time_zone(Reservation::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Reservation::RespondedAt))
                    .col(string_null(Reservation::Reason))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_reservation_task_id")
                    .table(Reservation::Table)
                    .col(Reservation::TaskId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Reservation::Table.into_iden(),
            Task::Table.into_iden(),
            EntryRule::Table.into_iden(),
            Queue::Table.into_iden(),
            Agent::Table.into_iden(),
            Activity::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Activity {
    Table,
    Name,
    Available,
    Description,
}

#[derive(DeriveIden)]
enum Agent {
    Table,
    Id,
    Name,
    Login,
    Spec,
    Activity,
    ActivitySince,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Queue {
    Table,
    Id,
    Name,
    Spec,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum EntryRule {
    Table,
    Position,
    Rule,
}

#[derive(DeriveIden)]
enum Task {
    Table,
    Id,
    ExternalId,
    Kind,
    Channel,
    QueueId,
    Status,
    Priority,
    Attributes,
    CallingNumber,
    DialledNumber,
    Ivr,
    Customer,
    CustomerId,
    CreatedAt,
    QueuedAt,
    RankAt,
    Step,
    Reservation,
    FirstOfferedAt,
    AgentId,
    AnsweredAt,
    AssignedAt,
    EndedAt,
    WrapUpUntil,
    CompletedAt,
    Outcome,
    DeclinedBy,
    Visited,
    Callback,
    NotBefore,
    ResumedFrom,
    TargetAgent,
    Version,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Reservation {
    Table,
    Id,
    TaskId,
    AgentId,
    Status,
    OfferedAt,
    ExpiresAt,
    RespondedAt,
    Reason,
}
