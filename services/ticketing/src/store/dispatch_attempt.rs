use sea_orm::entity::prelude::*;

/// One offer of an order to an assignee, and how it ended.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "dispatch_attempt")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub work_order_id: Uuid,
    /// Dispatches since the order was opened, asked for or reopened: those
    /// who declined or let it time out in this round are not offered it again.
    pub round: i32,
    pub assignee_id: Uuid,
    /// The rule that chose the assignee; none when staff named them.
    pub rule_id: Option<Uuid>,
    pub dispatched_by: String,
    pub offered_at: DateTimeUtc,
    pub responded_at: Option<DateTimeUtc>,
    /// pending, accepted, declined, timed_out, withdrawn, cancelled.
    pub outcome: String,
    pub reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
