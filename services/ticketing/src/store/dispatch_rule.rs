use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "dispatch_rule")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    /// Breaks ties between equally specific rules: lower first.
    pub precedence: i32,
    pub region_id: Option<Uuid>,
    pub region_path: Option<String>,
    pub type_key: Option<String>,
    pub category_id: Option<Uuid>,
    pub category_path: Option<String>,
    pub skill: Option<String>,
    pub strategy: String,
    /// Assignee ids; empty: every active assignee covering the order's region.
    pub candidates: Json,
    /// Dispatches without anyone asking (new, declined, timed-out, reopened orders).
    pub auto: bool,
    pub accept_timeout_secs: i64,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
