use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Seeded policies (type, priority, first response, resolution, in seconds):
/// major faults fixed within 24 hours, ordinary ones within 48.
const POLICIES: [(&str, &str, i64, i64); 2] = [
    ("fault_repair", "major", 2 * 3600, 24 * 3600),
    ("fault_repair", "normal", 4 * 3600, 48 * 3600),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SlaPolicy::Table)
                    .if_not_exists()
                    .col(string(SlaPolicy::TypeKey))
                    .col(string(SlaPolicy::Priority))
                    .col(big_integer(SlaPolicy::FirstResponseSecs))
                    .col(big_integer(SlaPolicy::ResolutionSecs))
                    .col(json_null(SlaPolicy::BusinessHours))
                    .col(json(SlaPolicy::PauseOn))
                    .col(big_integer(SlaPolicy::Version))
                    .col(timestamp_with_time_zone(SlaPolicy::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(SlaPolicy::TypeKey)
                            .col(SlaPolicy::Priority),
                    )
                    .to_owned(),
            )
            .await?;
        let now = chrono::Utc::now();
        for (type_key, priority, response, resolution) in POLICIES {
            let mut insert = Query::insert();
            insert
                .into_table(SlaPolicy::Table)
                .columns([
                    SlaPolicy::TypeKey,
                    SlaPolicy::Priority,
                    SlaPolicy::FirstResponseSecs,
                    SlaPolicy::ResolutionSecs,
                    SlaPolicy::PauseOn,
                    SlaPolicy::Version,
                    SlaPolicy::UpdatedAt,
                ])
                .values([
                    type_key.into(),
                    priority.into(),
                    response.into(),
                    resolution.into(),
                    serde_json::json!(["waiting_customer"]).into(),
                    1i64.into(),
                    now.into(),
                ])
                .map_err(|error| DbErr::Custom(error.to_string()))?
                .on_conflict(
                    OnConflict::columns([SlaPolicy::TypeKey, SlaPolicy::Priority])
                        .do_nothing()
                        .to_owned(),
                );
            manager.exec_stmt(insert.to_owned()).await?;
        }
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            timestamp_with_time_zone_null(WorkOrder::ResponseDueAt),
            timestamp_with_time_zone_null(WorkOrder::ResolutionDueAt),
            timestamp_with_time_zone_null(WorkOrder::RespondedAt),
            boolean_null(WorkOrder::ResponseMet),
            boolean_null(WorkOrder::ResolutionMet),
            big_integer(WorkOrder::ResolutionUsedSecs)
                .default(0)
                .to_owned(),
            timestamp_with_time_zone_null(WorkOrder::ResolutionRunningSince),
            uuid_null(WorkOrder::RepeatOf),
            integer(WorkOrder::EscalationLevel).default(0).to_owned(),
            boolean(WorkOrder::ResponseWarned).default(false).to_owned(),
            boolean(WorkOrder::ResolutionWarned)
                .default(false)
                .to_owned(),
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
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_work_order_customer_resolved")
                    .table(WorkOrder::Table)
                    .col(WorkOrder::CustomerId)
                    .col(WorkOrder::ResolvedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            WorkOrder::ResponseDueAt,
            WorkOrder::ResolutionDueAt,
            WorkOrder::RespondedAt,
            WorkOrder::ResponseMet,
            WorkOrder::ResolutionMet,
            WorkOrder::ResolutionUsedSecs,
            WorkOrder::ResolutionRunningSince,
            WorkOrder::RepeatOf,
            WorkOrder::EscalationLevel,
            WorkOrder::ResponseWarned,
            WorkOrder::ResolutionWarned,
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
        manager
            .drop_table(Table::drop().table(SlaPolicy::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SlaPolicy {
    Table,
    TypeKey,
    Priority,
    FirstResponseSecs,
    ResolutionSecs,
    BusinessHours,
    PauseOn,
    Version,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WorkOrder {
    Table,
    CustomerId,
    ResolvedAt,
    ResponseDueAt,
    ResolutionDueAt,
    RespondedAt,
    ResponseMet,
    ResolutionMet,
    ResolutionUsedSecs,
    ResolutionRunningSince,
    RepeatOf,
    EscalationLevel,
    ResponseWarned,
    ResolutionWarned,
}
