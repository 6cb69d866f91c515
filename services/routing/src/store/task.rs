use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "task")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub external_id: Option<String>,
    pub kind: String,
    pub channel: String,
    pub queue_id: Uuid,
    pub status: String,
    pub priority: i32,
    pub attributes: Json,
    pub calling_number: Option<String>,
    pub dialled_number: Option<String>,
    pub ivr: Json,
    pub customer: Option<Json>,
    pub customer_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub queued_at: DateTimeUtc,
    pub rank_at: DateTimeUtc,
    pub step: i32,
    pub reservation: Option<Json>,
    pub first_offered_at: Option<DateTimeUtc>,
    pub agent_id: Option<Uuid>,
    pub answered_at: Option<DateTimeUtc>,
    pub assigned_at: Option<DateTimeUtc>,
    pub ended_at: Option<DateTimeUtc>,
    pub wrap_up_until: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
    pub outcome: Option<String>,
    pub declined_by: Json,
    pub visited: Json,
    pub callback: Option<Json>,
    pub not_before: Option<DateTimeUtc>,
    pub resumed_from: Option<Uuid>,
    pub target_agent: Option<Uuid>,
    pub version: i64,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
