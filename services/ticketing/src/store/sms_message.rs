use sea_orm::entity::prelude::*;

/// A text to a technician: the outbox the `ticketing.sms` loop sends from,
/// and the record of what they were sent.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sms_message")]
pub struct Model {
    /// Stable across resends.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub work_order_id: Option<Uuid>,
    pub assignee_id: Option<Uuid>,
    /// new_order, withdrawn, cancelled, reply_ok, reply_error.
    pub purpose: String,
    /// E.164.
    pub to_phone: String,
    pub body: String,
    /// gsm7 or ucs2.
    pub encoding: String,
    pub parts: i32,
    /// queued, sent, delivered, failed.
    pub status: String,
    pub provider: Option<String>,
    pub part_ids: Option<Json>,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub error: Option<String>,
    pub created_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    pub delivered_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
