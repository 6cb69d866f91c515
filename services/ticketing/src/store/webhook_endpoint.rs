use sea_orm::entity::prelude::*;

/// A partner system's URL, subscribed to event types, with the secret its
/// deliveries are signed with.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoint")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub partner_id: String,
    pub url: String,
    pub description: Option<String>,
    /// Event types it receives; empty: all of them.
    pub event_types: Json,
    /// `whsec_` and the key in base64, as Standard Webhooks writes it.
    pub secret: String,
    /// The secret before the last rotation, still signed with until `previous_until`.
    pub previous_secret: Option<String>,
    pub previous_until: Option<DateTimeUtc>,
    pub enabled: bool,
    /// Why it was disabled: `gone` (it answered 410) or `manual`.
    pub disabled_reason: Option<String>,
    /// After a failed attempt nothing more is sent to it until then.
    pub paused_until: Option<DateTimeUtc>,
    pub version: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl Model {
    pub fn subscribed(&self, event_type: &str) -> bool {
        match self.event_types.as_array() {
            Some(types) if !types.is_empty() => types.iter().any(|t| t == event_type),
            _ => true,
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
