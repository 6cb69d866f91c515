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
    pub response_due_at: Option<DateTimeUtc>,
    pub resolution_due_at: Option<DateTimeUtc>,
    pub responded_at: Option<DateTimeUtc>,
    pub response_met: Option<bool>,
    pub resolution_met: Option<bool>,
    /// Business time the resolution clock ran before its current pause.
    pub resolution_used_secs: i64,
    /// When the resolution clock last started; none while it is paused.
    pub resolution_running_since: Option<DateTimeUtc>,
    /// The resolved order of the same customer and fault this one repeats.
    pub repeat_of: Option<Uuid>,
    /// Warnings and breaches so far.
    pub escalation_level: i32,
    pub response_warned: bool,
    pub resolution_warned: bool,
    /// See `dispatch_attempt.round`.
    pub dispatch_round: i32,
    /// While dispatched: when the offer times out unaccepted.
    pub offer_expires_at: Option<DateTimeUtc>,
    /// While new: when to try the rules again (their assignees were all closed).
    pub redispatch_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
