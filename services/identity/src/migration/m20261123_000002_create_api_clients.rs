use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApiClient::Table)
                    .if_not_exists()
                    .col(string(ApiClient::ClientId).primary_key())
                    .col(string(ApiClient::Name))
                    .col(string(ApiClient::SecretHash))
                    .col(json(ApiClient::Roles))
                    .col(string_null(ApiClient::PartnerId))
                    .col(string(ApiClient::CreatedBy))
                    .col(timestamp_with_time_zone(ApiClient::CreatedAt))
                    .col(timestamp_with_time_zone_null(ApiClient::RevokedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SigningKey::Table)
                    .if_not_exists()
                    .col(string(SigningKey::Kid).primary_key())
                    .col(big_integer(SigningKey::Generation).unique_key())
                    .col(blob(SigningKey::PrivateKey))
                    .col(text(SigningKey::PublicJwk))
                    .col(timestamp_with_time_zone(SigningKey::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SigningKey::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ApiClient::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ApiClient {
    Table,
    ClientId,
    Name,
    SecretHash,
    Roles,
    PartnerId,
    CreatedBy,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum SigningKey {
    Table,
    Kid,
    Generation,
    PrivateKey,
    PublicJwk,
    CreatedAt,
}
