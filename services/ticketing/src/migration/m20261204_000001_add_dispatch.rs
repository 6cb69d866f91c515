use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DispatchRule::Table)
                    .if_not_exists()
                    .col(uuid(DispatchRule::Id).primary_key())
                    .col(string(DispatchRule::Name))
                    .col(integer(DispatchRule::Precedence))
                    .col(uuid_null(DispatchRule::RegionId))
                    .col(string_null(DispatchRule::RegionPath))
                    .col(string_null(DispatchRule::TypeKey))
                    .col(uuid_null(DispatchRule::CategoryId))
                    .col(string_null(DispatchRule::CategoryPath))
                    .col(string_null(DispatchRule::Skill))
                    .col(string(DispatchRule::Strategy))
                    .col(json(DispatchRule::Candidates))
                    .col(boolean(DispatchRule::Auto))
                    .col(big_integer(DispatchRule::AcceptTimeoutSecs))
                    .col(boolean(DispatchRule::Active))
                    .col(big_integer(DispatchRule::Version))
                    .col(timestamp_with_time_zone(DispatchRule::CreatedAt))
                    .col(timestamp_with_time_zone(DispatchRule::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DispatchAttempt::Table)
                    .if_not_exists()
                    .col(uuid(DispatchAttempt::Id).primary_key())
                    .col(uuid(DispatchAttempt::WorkOrderId))
                    .col(integer(DispatchAttempt::Round))
                    .col(uuid(DispatchAttempt::AssigneeId))
                    .col(uuid_null(DispatchAttempt::RuleId))
                    .col(string(DispatchAttempt::DispatchedBy))
                    .col(timestamp_with_time_zone(DispatchAttempt::OfferedAt))
                    .col(timestamp_with_time_zone_null(DispatchAttempt::RespondedAt))
                    .col(string(DispatchAttempt::Outcome))
                    .col(string_null(DispatchAttempt::Reason))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_dispatch_attempt_order_round")
                    .table(DispatchAttempt::Table)
                    .col(DispatchAttempt::WorkOrderId)
                    .col(DispatchAttempt::Round)
                    .to_owned(),
            )
            .await?;
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            json(Assignee::Regions).default(Expr::val("[]")).to_owned(),
            json_null(Assignee::BusinessHours),
            timestamp_with_time_zone_null(Assignee::LastDispatchedAt),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Assignee::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(SlaPolicy::Table)
                    .add_column(boolean(SlaPolicy::RedispatchOnBreach).default(false))
                    .to_owned(),
            )
            .await?;
        for column in [
            integer(WorkOrder::DispatchRound).default(0).to_owned(),
            timestamp_with_time_zone_null(WorkOrder::OfferExpiresAt),
            timestamp_with_time_zone_null(WorkOrder::RedispatchAt),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(WorkOrder::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            WorkOrder::DispatchRound,
            WorkOrder::OfferExpiresAt,
            WorkOrder::RedispatchAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(WorkOrder::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            Assignee::Regions,
            Assignee::BusinessHours,
            Assignee::LastDispatchedAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Assignee::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(SlaPolicy::Table)
                    .drop_column(SlaPolicy::RedispatchOnBreach)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(DispatchAttempt::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(DispatchRule::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum DispatchRule {
    Table,
    Id,
    Name,
    Precedence,
    RegionId,
    RegionPath,
    TypeKey,
    CategoryId,
    CategoryPath,
    Skill,
    Strategy,
    Candidates,
    Auto,
    AcceptTimeoutSecs,
    Active,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DispatchAttempt {
    Table,
    Id,
    WorkOrderId,
    Round,
    AssigneeId,
    RuleId,
    DispatchedBy,
    OfferedAt,
    RespondedAt,
    Outcome,
    Reason,
}

#[derive(DeriveIden)]
enum Assignee {
    Table,
    Regions,
    BusinessHours,
    LastDispatchedAt,
}

#[derive(DeriveIden)]
enum WorkOrder {
    Table,
    DispatchRound,
    OfferExpiresAt,
    RedispatchAt,
}

#[derive(DeriveIden)]
enum SlaPolicy {
    Table,
    RedispatchOnBreach,
}
