use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "work_order_history")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub work_order_id: Uuid,
    /// Per order, from 1: the order's version after the change.
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub at: DateTimeUtc,
    pub actor: String,
    pub actor_kind: String,
    pub action: String,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    /// `{"field": {"from": …, "to": …}}`, personal data masked.
    pub changes: Json,
    /// `shared` (the assignee sees it) or `internal`.
    pub visibility: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
