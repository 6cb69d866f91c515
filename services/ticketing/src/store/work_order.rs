use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "work_order")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub number: String,
    pub type_key: String,
    pub category_id: Uuid,
    pub category_path: String,
    pub priority: String,
    pub status: String,
    pub customer_id: Option<String>,
    pub customer_name: Option<String>,
    pub customer_phone: Option<String>,
    pub customer_address: Option<String>,
    pub service_address: Option<String>,
    pub region_id: Uuid,
    pub region_path: String,
    pub source_task_id: Option<String>,
    pub call_id: Option<String>,
    pub description: String,
    pub resolution_code: Option<String>,
    pub resolution_note: Option<String>,
    pub assignee_id: Option<Uuid>,
    /// The shop that owns it now (or resolved it): what partner scoping filters on.
    pub partner_id: Option<String>,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub resolved_at: Option<DateTimeUtc>,
    pub closed_at: Option<DateTimeUtc>,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
