use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sla_policy")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub type_key: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub priority: String,
    pub first_response_secs: i64,
    pub resolution_secs: i64,
    /// The kit's `BusinessHours`; none: the clocks run around the clock.
    pub business_hours: Option<Json>,
    /// Statuses the resolution clock stops in (beside resolved, closed, cancelled).
    pub pause_on: Json,
    pub version: i64,
    /// See `domain::sla::Policy::redispatch_on_breach`.
    pub redispatch_on_breach: bool,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
