//! What identity answers: customers as a given caller may see them, timelines,
//! audit records, screen-pop candidates.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    billing::BillingInfo,
    domain::customer::{Address, Asset, Phone},
};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CustomerView {
    pub id: Uuid,
    pub name: String,
    pub phones: Vec<Phone>,
    pub addresses: Vec<Address>,
    /// Masked (`1101**********002X`) unless the caller is an admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub tags: Vec<String>,
    pub vip_level: i32,
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub assets: Vec<Asset>,
    /// Increases with every change; the `ETag` is derived from it.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set once the customer's personal data was erased (only the tombstone remains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TimelineEntryView {
    pub id: Uuid,
    /// call, ticket, survey or note.
    pub kind: String,
    pub reference: String,
    pub summary: String,
    pub actor: String,
    /// The service that recorded it.
    pub source: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    pub id: Uuid,
    pub actor: String,
    /// created, updated, merged, merged_into, erased, exported.
    pub action: String,
    /// Snapshot before the change, personal data masked.
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    pub at: DateTime<Utc>,
}

/// One screen-pop candidate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Candidate {
    pub customer: CustomerView,
    /// primary_phone or other_phone: the first is a stronger match.
    pub matched_on: String,
    pub recent_history: Vec<TimelineEntryView>,
    pub billing: BillingInfo,
}

/// The answer to "who is calling from this number?"
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LookupResult {
    /// The calling number in E.164.
    pub phone: String,
    /// Best match first; empty when nobody has this number, several when it is
    /// shared (a family landline): the agent chooses, the system never guesses.
    pub candidates: Vec<Candidate>,
}

/// Everything identity holds about one person (PIPL/GDPR access request).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CustomerExport {
    pub exported_at: DateTime<Utc>,
    pub customer: CustomerView,
    /// The history of the customer and of every record merged into it.
    pub timeline: Vec<TimelineEntryView>,
    pub audit: Vec<AuditEntryView>,
    /// Records merged into this customer (their ids resolve to it).
    pub merged_records: Vec<MergedRecordExport>,
}

/// A record merged into the exported customer, as it is stored now: a merge
/// moves its personal data to the survivor, so it holds ids, tags and dates;
/// records merged before that rule may still hold more.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MergedRecordExport {
    pub customer: CustomerView,
    pub merged_into: Uuid,
    pub audit: Vec<AuditEntryView>,
}
