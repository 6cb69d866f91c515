use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "assignee")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub kind: String,
    pub name: String,
    /// A technician's phone (E.164).
    pub phone: Option<String>,
    /// A shop's partner id, as in its API clients' tokens.
    pub partner_id: Option<String>,
    pub skills: Json,
    pub capacity: i32,
    pub open_orders: i32,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The regions it covers, with their subtrees: `[{"id", "path"}]`.
    pub regions: Json,
    /// When it takes orders (the kit's `BusinessHours`); none: always.
    pub business_hours: Option<Json>,
    /// Round-robin's turn, and least-loaded's tie-break.
    pub last_dispatched_at: Option<DateTimeUtc>,
}

/// A region an assignee covers, as `regions` holds it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Covered {
    pub id: Uuid,
    pub path: String,
}

impl Model {
    pub fn covered(&self) -> Vec<Covered> {
        serde_json::from_value(self.regions.clone()).unwrap_or_default()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
