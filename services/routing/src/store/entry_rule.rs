use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "entry_rule")]
pub struct Model {
    /// Rules are tried in this order.
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i32,
    pub rule: Json,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
