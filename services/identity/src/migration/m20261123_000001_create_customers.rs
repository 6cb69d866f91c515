use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Customer::Table)
                    .if_not_exists()
                    .col(uuid(Customer::Id).primary_key())
                    .col(string(Customer::Name))
                    .col(string(Customer::NameKey))
                    .col(string_null(Customer::Email))
                    .col(blob_null(Customer::IdNumberCipher))
                    .col(string_null(Customer::IdNumberHash))
                    .col(string_null(Customer::IdNumberMasked))
                    .col(json(Customer::Addresses))
                    .col(text(Customer::AddressText))
                    .col(json(Customer::Tags))
                    .col(integer(Customer::VipLevel))
                    .col(json(Customer::Attributes))
                    .col(json(Customer::Assets))
                    .col(big_integer(Customer::Version))
                    .col(uuid_null(Customer::MergedInto))
                    .col(timestamp_with_time_zone_null(Customer::ErasedAt))
                    .col(timestamp_with_time_zone(Customer::CreatedAt))
                    .col(timestamp_with_time_zone(Customer::UpdatedAt))
                    .col(string(Customer::CreatedBy))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_customer_name_key", Customer::NameKey),
            ("idx_customer_id_number_hash", Customer::IdNumberHash),
            ("idx_customer_merged_into", Customer::MergedInto),
        ] {
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name(name)
                        .table(Customer::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(CustomerPhone::Table)
                    .if_not_exists()
                    .col(uuid(CustomerPhone::CustomerId))
                    .col(string(CustomerPhone::Number))
                    .col(string(CustomerPhone::Label))
                    .col(integer(CustomerPhone::Position))
                    .primary_key(
                        Index::create()
                            .col(CustomerPhone::CustomerId)
                            .col(CustomerPhone::Number),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(CustomerPhone::Table, CustomerPhone::CustomerId)
                            .to(Customer::Table, Customer::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_customer_phone_number")
                    .table(CustomerPhone::Table)
                    .col(CustomerPhone::Number)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TimelineEntry::Table)
                    .if_not_exists()
                    .col(uuid(TimelineEntry::Id).primary_key())
                    .col(uuid(TimelineEntry::CustomerId))
                    .col(string(TimelineEntry::Kind))
                    .col(string(TimelineEntry::Reference))
                    .col(text(TimelineEntry::Summary))
                    .col(string(TimelineEntry::Actor))
                    .col(string(TimelineEntry::Source))
                    .col(timestamp_with_time_zone(TimelineEntry::OccurredAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_timeline_entry_customer")
                    .table(TimelineEntry::Table)
                    .col(TimelineEntry::CustomerId)
                    .col(TimelineEntry::OccurredAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditEntry::Table)
                    .if_not_exists()
                    .col(uuid(AuditEntry::Id).primary_key())
                    .col(uuid(AuditEntry::CustomerId))
                    .col(string(AuditEntry::Actor))
                    .col(string(AuditEntry::Action))
                    .col(json_null(AuditEntry::Before))
                    .col(json_null(AuditEntry::After))
                    .col(timestamp_with_time_zone(AuditEntry::At))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_audit_entry_customer")
                    .table(AuditEntry::Table)
                    .col(AuditEntry::CustomerId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditEntry::Table.into_iden(),
            TimelineEntry::Table.into_iden(),
            CustomerPhone::Table.into_iden(),
            Customer::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Customer {
    Table,
    Id,
    Name,
    NameKey,
    Email,
    IdNumberCipher,
    IdNumberHash,
    IdNumberMasked,
    Addresses,
    AddressText,
    Tags,
    VipLevel,
    Attributes,
    Assets,
    Version,
    MergedInto,
    ErasedAt,
    CreatedAt,
    UpdatedAt,
    CreatedBy,
}

#[derive(DeriveIden)]
enum CustomerPhone {
    Table,
    CustomerId,
    Number,
    Label,
    Position,
}

#[derive(DeriveIden)]
enum TimelineEntry {
    Table,
    Id,
    CustomerId,
    Kind,
    Reference,
    Summary,
    Actor,
    Source,
    OccurredAt,
}

#[derive(DeriveIden)]
enum AuditEntry {
    Table,
    Id,
    CustomerId,
    Actor,
    Action,
    Before,
    After,
    At,
}
