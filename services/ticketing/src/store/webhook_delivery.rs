use sea_orm::entity::prelude::*;

/// One event for one endpoint: the outbox the `ticketing.webhooks` loop
/// delivers from, and the delivery log. Its id is the `webhook-id`, the same
/// on every attempt and replay, so the receiver can drop repeats.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_delivery")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub partner_id: String,
    pub work_order_id: Option<Uuid>,
    pub event_type: String,
    /// The body exactly as sent (and signed).
    pub payload: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
