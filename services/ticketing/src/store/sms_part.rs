use sea_orm::entity::prelude::*;

/// One part of a text as an SMSC took it: the id its receipt will name.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sms_part")]
pub struct Model {
    /// The SMSC's message id (`submit_sm_resp`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub provider_id: String,
    pub sms_message_id: Uuid,
    /// 1-based.
    pub part: i32,
    /// sent, delivered, failed.
    pub status: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
