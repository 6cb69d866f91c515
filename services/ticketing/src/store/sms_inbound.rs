use sea_orm::entity::prelude::*;

/// A text received, and what it did.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sms_inbound")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub provider: String,
    /// E.164 when it reads as a number, else as received.
    pub from_phone: String,
    pub body: String,
    pub received_at: DateTimeUtc,
    /// The technician whose registered phone sent it; none: an unknown sender.
    pub assignee_id: Option<Uuid>,
    pub work_order_id: Option<Uuid>,
    /// accept, done, decline.
    pub command: Option<String>,
    /// applied, already_applied, unknown_sender, or why it was refused.
    pub outcome: String,
    pub reply_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
