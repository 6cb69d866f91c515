use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The types every center starts with, and their default priority.
const TYPES: [(&str, &str, &str); 4] = [
    ("fault_repair", "Fault repair", "normal"),
    ("installation", "Installation", "normal"),
    ("complaint", "Complaint", "normal"),
    ("inquiry", "Inquiry", "low"),
];

/// Resolution codes every type may use, until the center sets its own.
const CODES: [(&str, &str); 4] = [
    ("fixed", "Fixed on site"),
    ("device_replaced", "Device replaced"),
    ("no_fault_found", "No fault found"),
    ("customer_withdrew", "Customer withdrew the request"),
];

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    columns: Vec<impl IntoIden>,
    unique: bool,
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.if_not_exists().name(name).table(table);
    for column in columns {
        index.col(column);
    }
    if unique {
        index.unique();
    }
    manager.create_index(index.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WorkOrderType::Table)
                    .if_not_exists()
                    .col(string(WorkOrderType::Key).primary_key())
                    .col(string(WorkOrderType::Name))
                    .col(string(WorkOrderType::DefaultPriority))
                    .col(boolean(WorkOrderType::Active))
                    .col(big_integer(WorkOrderType::Version))
                    .col(timestamp_with_time_zone(WorkOrderType::CreatedAt))
                    .to_owned(),
            )
            .await?;
        let now = chrono::Utc::now();
        for (key, name, priority) in TYPES {
            let mut insert = Query::insert();
            insert
                .into_table(WorkOrderType::Table)
                .columns([
                    WorkOrderType::Key,
                    WorkOrderType::Name,
                    WorkOrderType::DefaultPriority,
                    WorkOrderType::Active,
                    WorkOrderType::Version,
                    WorkOrderType::CreatedAt,
                ])
                .values([
                    key.into(),
                    name.into(),
                    priority.into(),
                    true.into(),
                    1i64.into(),
                    now.into(),
                ])
                .map_err(|error| DbErr::Custom(error.to_string()))?
                .on_conflict(
                    OnConflict::column(WorkOrderType::Key)
                        .do_nothing()
                        .to_owned(),
                );
            manager.exec_stmt(insert.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(ResolutionCode::Table)
                    .if_not_exists()
                    .col(string(ResolutionCode::Code).primary_key())
                    .col(string(ResolutionCode::Name))
                    .col(json(ResolutionCode::Types))
                    .col(boolean(ResolutionCode::Active))
                    .col(big_integer(ResolutionCode::Version))
                    .col(timestamp_with_time_zone(ResolutionCode::CreatedAt))
                    .to_owned(),
            )
            .await?;
        for (code, name) in CODES {
            let mut insert = Query::insert();
            insert
                .into_table(ResolutionCode::Table)
                .columns([
                    ResolutionCode::Code,
                    ResolutionCode::Name,
                    ResolutionCode::Types,
                    ResolutionCode::Active,
                    ResolutionCode::Version,
                    ResolutionCode::CreatedAt,
                ])
                .values([
                    code.into(),
                    name.into(),
                    serde_json::json!([]).into(),
                    true.into(),
                    1i64.into(),
                    now.into(),
                ])
                .map_err(|error| DbErr::Custom(error.to_string()))?
                .on_conflict(
                    OnConflict::column(ResolutionCode::Code)
                        .do_nothing()
                        .to_owned(),
                );
            manager.exec_stmt(insert.to_owned()).await?;
        }
        // Trees (categories, regions) keep the codes from their root in
        // `path` (/tv/itv/no_signal/), so a subtree is one `LIKE 'path%'`.
        for (table, id, parent, code, name, path, level, active, version, created) in [
            (
                Category::Table.into_iden(),
                Category::Id.into_iden(),
                Category::ParentId.into_iden(),
                Category::Code.into_iden(),
                Category::Name.into_iden(),
                Category::Path.into_iden(),
                Category::Level.into_iden(),
                Category::Active.into_iden(),
                Category::Version.into_iden(),
                Category::CreatedAt.into_iden(),
            ),
            (
                Region::Table.into_iden(),
                Region::Id.into_iden(),
                Region::ParentId.into_iden(),
                Region::Code.into_iden(),
                Region::Name.into_iden(),
                Region::Path.into_iden(),
                Region::Level.into_iden(),
                Region::Active.into_iden(),
                Region::Version.into_iden(),
                Region::CreatedAt.into_iden(),
            ),
        ] {
            manager
                .create_table(
                    Table::create()
                        .table(table.clone())
                        .if_not_exists()
                        .col(uuid(id).primary_key())
                        .col(uuid_null(parent))
                        .col(string(code))
                        .col(string(name))
                        .col(string(path.clone()))
                        .col(integer(level))
                        .col(boolean(active))
                        .col(big_integer(version))
                        .col(timestamp_with_time_zone(created))
                        .to_owned(),
                )
                .await?;
        }
        index(
            manager,
            "idx_category_path",
            Category::Table,
            vec![Category::Path],
            true,
        )
        .await?;
        index(
            manager,
            "idx_region_path",
            Region::Table,
            vec![Region::Path],
            true,
        )
        .await?;
        // Region codes are unique in the whole hierarchy (they come from the
        // operator's own district codes); category codes only among siblings.
        index(
            manager,
            "idx_region_code",
            Region::Table,
            vec![Region::Code],
            true,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(Assignee::Table)
                    .if_not_exists()
                    .col(uuid(Assignee::Id).primary_key())
                    .col(string(Assignee::Kind))
                    .col(string(Assignee::Name))
                    .col(string_null(Assignee::Phone))
                    .col(string_null(Assignee::PartnerId))
                    .col(json(Assignee::Skills))
                    .col(integer(Assignee::Capacity))
                    .col(integer(Assignee::OpenOrders))
                    .col(boolean(Assignee::Active))
                    .col(big_integer(Assignee::Version))
                    .col(timestamp_with_time_zone(Assignee::CreatedAt))
                    .col(timestamp_with_time_zone(Assignee::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_assignee_partner_id",
            Assignee::Table,
            vec![Assignee::PartnerId],
            true,
        )
        .await?;
        index(
            manager,
            "idx_assignee_phone",
            Assignee::Table,
            vec![Assignee::Phone],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(WorkOrder::Table)
                    .if_not_exists()
                    .col(uuid(WorkOrder::Id).primary_key())
                    .col(string(WorkOrder::Number))
                    .col(string(WorkOrder::TypeKey))
                    .col(uuid(WorkOrder::CategoryId))
                    .col(string(WorkOrder::CategoryPath))
                    .col(string(WorkOrder::Priority))
                    .col(string(WorkOrder::Status))
                    .col(string_null(WorkOrder::CustomerId))
                    .col(string_null(WorkOrder::CustomerName))
                    .col(string_null(WorkOrder::CustomerPhone))
                    .col(string_null(WorkOrder::CustomerAddress))
                    .col(string_null(WorkOrder::ServiceAddress))
                    .col(uuid(WorkOrder::RegionId))
                    .col(string(WorkOrder::RegionPath))
                    .col(string_null(WorkOrder::SourceTaskId))
                    .col(string_null(WorkOrder::CallId))
                    .col(text(WorkOrder::Description))
                    .col(string_null(WorkOrder::ResolutionCode))
                    .col(text_null(WorkOrder::ResolutionNote))
                    .col(uuid_null(WorkOrder::AssigneeId))
                    .col(string_null(WorkOrder::PartnerId))
                    .col(string(WorkOrder::CreatedBy))
                    .col(timestamp_with_time_zone(WorkOrder::CreatedAt))
                    .col(timestamp_with_time_zone(WorkOrder::UpdatedAt))
                    .col(timestamp_with_time_zone_null(WorkOrder::ResolvedAt))
                    .col(timestamp_with_time_zone_null(WorkOrder::ClosedAt))
                    .col(big_integer(WorkOrder::Version))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_work_order_number",
            WorkOrder::Table,
            vec![WorkOrder::Number],
            true,
        )
        .await?;
        for (name, columns) in [
            (
                "idx_work_order_status_created",
                vec![WorkOrder::Status, WorkOrder::CreatedAt],
            ),
            (
                "idx_work_order_partner_created",
                vec![WorkOrder::PartnerId, WorkOrder::CreatedAt],
            ),
            (
                "idx_work_order_customer",
                vec![WorkOrder::CustomerId, WorkOrder::CreatedAt],
            ),
            (
                "idx_work_order_assignee",
                vec![WorkOrder::AssigneeId, WorkOrder::Status],
            ),
            (
                "idx_work_order_created",
                vec![WorkOrder::CreatedAt, WorkOrder::Id],
            ),
        ] {
            index(manager, name, WorkOrder::Table, columns, false).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(WorkOrderHistory::Table)
                    .if_not_exists()
                    .col(uuid(WorkOrderHistory::WorkOrderId))
                    .col(big_integer(WorkOrderHistory::Seq))
                    .col(timestamp_with_time_zone(WorkOrderHistory::At))
                    .col(string(WorkOrderHistory::Actor))
                    .col(string(WorkOrderHistory::ActorKind))
                    .col(string(WorkOrderHistory::Action))
                    .col(string_null(WorkOrderHistory::FromStatus))
                    .col(string_null(WorkOrderHistory::ToStatus))
                    .col(json(WorkOrderHistory::Changes))
                    .col(string(WorkOrderHistory::Visibility))
                    .primary_key(
                        Index::create()
                            .col(WorkOrderHistory::WorkOrderId)
                            .col(WorkOrderHistory::Seq),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WorkOrderNote::Table)
                    .if_not_exists()
                    .col(uuid(WorkOrderNote::Id).primary_key())
                    .col(uuid(WorkOrderNote::WorkOrderId))
                    .col(string(WorkOrderNote::Author))
                    .col(boolean(WorkOrderNote::Internal))
                    .col(text(WorkOrderNote::Body))
                    .col(timestamp_with_time_zone(WorkOrderNote::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_work_order_note_order",
            WorkOrderNote::Table,
            vec![WorkOrderNote::WorkOrderId, WorkOrderNote::CreatedAt],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(WorkOrderCounter::Table)
                    .if_not_exists()
                    .col(string(WorkOrderCounter::Day).primary_key())
                    .col(big_integer(WorkOrderCounter::Last))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WorkOrderCounter::Table.into_iden(),
            WorkOrderNote::Table.into_iden(),
            WorkOrderHistory::Table.into_iden(),
            WorkOrder::Table.into_iden(),
            Assignee::Table.into_iden(),
            Region::Table.into_iden(),
            Category::Table.into_iden(),
            ResolutionCode::Table.into_iden(),
            WorkOrderType::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum WorkOrderType {
    Table,
    Key,
    Name,
    DefaultPriority,
    Active,
    Version,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ResolutionCode {
    Table,
    Code,
    Name,
    Types,
    Active,
    Version,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Category {
    Table,
    Id,
    ParentId,
    Code,
    Name,
    Path,
    Level,
    Active,
    Version,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Region {
    Table,
    Id,
    ParentId,
    Code,
    Name,
    Path,
    Level,
    Active,
    Version,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Assignee {
    Table,
    Id,
    Kind,
    Name,
    Phone,
    PartnerId,
    Skills,
    Capacity,
    OpenOrders,
    Active,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WorkOrder {
    Table,
    Id,
    Number,
    TypeKey,
    CategoryId,
    CategoryPath,
    Priority,
    Status,
    CustomerId,
    CustomerName,
    CustomerPhone,
    CustomerAddress,
    ServiceAddress,
    RegionId,
    RegionPath,
    SourceTaskId,
    CallId,
    Description,
    ResolutionCode,
    ResolutionNote,
    AssigneeId,
    PartnerId,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    ResolvedAt,
    ClosedAt,
    Version,
}

#[derive(DeriveIden)]
enum WorkOrderHistory {
    Table,
    WorkOrderId,
    Seq,
    At,
    Actor,
    ActorKind,
    Action,
    FromStatus,
    ToStatus,
    Changes,
    Visibility,
}

#[derive(DeriveIden)]
enum WorkOrderNote {
    Table,
    Id,
    WorkOrderId,
    Author,
    Internal,
    Body,
    CreatedAt,
}

#[derive(DeriveIden)]
enum WorkOrderCounter {
    Table,
    Day,
    Last,
}
