//! The secret routing replicas prove themselves with to each other's
//! `RouterPeerService`: made once per database, so only processes that can
//! read routing's schema can forward commands to the router.

use rand::Rng;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PeerKey::Table)
                    .if_not_exists()
                    .col(integer(PeerKey::Id).primary_key())
                    .col(text(PeerKey::Secret))
                    .to_owned(),
            )
            .await?;
        let secret = hex::encode(rand::rng().random::<[u8; 32]>());
        let mut insert = Query::insert();
        insert
            .into_table(PeerKey::Table)
            .columns([PeerKey::Id, PeerKey::Secret])
            .values([1.into(), secret.into()])
            .map_err(|error| DbErr::Custom(error.to_string()))?
            .on_conflict(OnConflict::column(PeerKey::Id).do_nothing().to_owned());
        manager.exec_stmt(insert.to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PeerKey::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum PeerKey {
    Table,
    Id,
    Secret,
}
