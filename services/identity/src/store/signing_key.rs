use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_key")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    /// Rotation period number; unique, so replicas rotating together make one key.
    #[sea_orm(unique)]
    pub generation: i64,
    /// PKCS#8 private key, encrypted with the PII key.
    pub private_key: Vec<u8>,
    pub public_jwk: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
