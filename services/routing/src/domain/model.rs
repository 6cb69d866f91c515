//! Routing's entities: activities, agents, queues, entry rules and tasks, with
//! the validation of what clients send.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use hotline_kit::error::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use hotline_kit::calendar::BusinessHours;

use super::expr;

pub type AgentId = Uuid;
pub type QueueId = Uuid;
pub type TaskId = Uuid;
pub type ReservationId = Uuid;

/// The activity of a signed-off agent; always there, never available.
pub const OFFLINE: &str = "offline";
/// The activity an agent signs in to unless they name another.
pub const READY: &str = "ready";

/// How work reaches the center. Capacity is per channel: an agent may take one
/// call and three chats at once.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    #[default]
    Voice,
    Chat,
    Email,
    WorkItem,
}

impl Channel {
    pub const ALL: [Channel; 4] = [Self::Voice, Self::Chat, Self::Email, Self::WorkItem];

    fn index(self) -> usize {
        match self {
            Self::Voice => 0,
            Self::Chat => 1,
            Self::Email => 2,
            Self::WorkItem => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Voice => "voice",
            Self::Chat => "chat",
            Self::Email => "email",
            Self::WorkItem => "work_item",
        }
    }
}

/// One value per channel, looked up without a map (the router's hot path).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerChannel<T>([T; 4]);

impl<T: Copy> PerChannel<T> {
    pub fn filled(value: T) -> Self {
        Self([value; 4])
    }

    pub fn values(&self) -> impl Iterator<Item = T> + '_ {
        self.0.iter().copied()
    }
}

impl<T> std::ops::Index<Channel> for PerChannel<T> {
    type Output = T;

    fn index(&self, channel: Channel) -> &T {
        &self.0[channel.index()]
    }
}

impl<T> std::ops::IndexMut<Channel> for PerChannel<T> {
    fn index_mut(&mut self, channel: Channel) -> &mut T {
        &mut self.0[channel.index()]
    }
}

/// An agent's activity: signed off, ready, on break, at lunch, in training...
/// Only available activities receive offers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Activity {
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    pub available: bool,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
}

/// What a client sends to create or replace an agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// The API client id the agent's desktop signs in with; an agent token acts
    /// only on the agent whose login is its client id.
    #[serde(default)]
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub login: Option<String>,
    #[serde(default)]
    #[schema(schema_with = agent_schema::groups)]
    pub groups: BTreeSet<String>,
    /// Skill name to level, 0 to 100.
    #[serde(default, deserialize_with = "whole_numbers::map")]
    #[schema(schema_with = agent_schema::skills)]
    pub skills: BTreeMap<String, u8>,
    /// Tasks at once per channel; voice 1 when not given, other channels 0.
    #[serde(default, deserialize_with = "whole_numbers::map")]
    #[schema(schema_with = agent_schema::capacity)]
    pub capacity: BTreeMap<Channel, u32>,
    /// Further attributes target expressions may name (`attributes.site`).
    #[serde(default)]
    #[schema(schema_with = agent_schema::attributes)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// Changes to an agent; absent fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPatch {
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: Option<String>,
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub login: Option<String>,
    #[schema(schema_with = agent_schema::groups_patch)]
    pub groups: Option<BTreeSet<String>>,
    #[serde(default, deserialize_with = "whole_numbers::optional_map")]
    #[schema(schema_with = agent_schema::skills_patch)]
    pub skills: Option<BTreeMap<String, u8>>,
    #[serde(default, deserialize_with = "whole_numbers::optional_map")]
    #[schema(schema_with = agent_schema::capacity_patch)]
    pub capacity: Option<BTreeMap<Channel, u32>>,
    #[schema(schema_with = agent_schema::attributes_patch)]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Maps of whole numbers as JSON Schema's `integer` has them: `75` or `75.0`
/// (a client's JSON library may write either); a fraction, a negative or a
/// value too large for `T` is refused. (serde reads `75.0` as a float only.)
mod whole_numbers {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, de::Error};

    /// `number` as a `T`, when it is a whole number a `T` holds.
    fn whole<T: TryFrom<u64>>(number: &serde_json::Number) -> Option<T> {
        let value = match number.as_u64() {
            Some(value) => value,
            None => {
                let float = number.as_f64()?;
                // Exact: every limit checked here is far below 2^53.
                if float.fract() != 0.0 || !(0.0..=f64::from(u32::MAX)).contains(&float) {
                    return None;
                }
                float as u64
            }
        };
        T::try_from(value).ok()
    }

    fn convert<E: Error, K: Ord, T: TryFrom<u64>>(
        numbers: BTreeMap<K, serde_json::Number>,
    ) -> Result<BTreeMap<K, T>, E> {
        numbers
            .into_iter()
            .map(|(key, number)| {
                whole(&number)
                    .map(|value| (key, value))
                    .ok_or_else(|| E::custom(format!("{number} is not a whole number in range")))
            })
            .collect()
    }

    pub fn map<'de, D, K, T>(deserializer: D) -> Result<BTreeMap<K, T>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Ord,
        T: TryFrom<u64>,
    {
        convert(BTreeMap::deserialize(deserializer)?)
    }

    /// [`map`] of a patch's field: `null` (or absent) leaves it as it is.
    pub fn optional_map<'de, D, K, T>(deserializer: D) -> Result<Option<BTreeMap<K, T>>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Ord,
        T: TryFrom<u64>,
    {
        Option::<BTreeMap<K, serde_json::Number>>::deserialize(deserializer)?
            .map(convert)
            .transpose()
    }
}

/// What [`AgentSpec::validated`] accepts, as schemas (utoipa has no
/// attributes for a map's keys and values). A patch's field also takes
/// `null`, which leaves the value as it is.
mod agent_schema {
    use utoipa::openapi::{
        KnownFormat, SchemaFormat,
        schema::{ArrayBuilder, Object, ObjectBuilder, Schema, SchemaType, Type},
    };

    use super::{Channel, MAX_CAPACITY, MAX_ITEMS, MAX_NAME};

    /// [`super::check_name`]: not blank, no control characters.
    const NAME: &str = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";

    fn of(kind: Type, nullable: bool) -> SchemaType {
        if nullable {
            SchemaType::from_iter([kind, Type::Null])
        } else {
            SchemaType::new(kind)
        }
    }

    fn name() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX_NAME))
            .pattern(Some(NAME))
            .build()
    }

    fn level(maximum: u32) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
            .minimum(Some(0))
            .maximum(Some(maximum))
    }

    fn group_set(nullable: bool) -> Schema {
        ArrayBuilder::new()
            .schema_type(of(Type::Array, nullable))
            // A set: a group named twice counts once, so neither
            // `uniqueItems` nor `maxItems` (of the list sent) would be true.
            .description(Some(
                "At most 50 different groups; one named twice counts once.",
            ))
            .items(name())
            .build()
            .into()
    }

    fn skill_map(nullable: bool) -> Schema {
        ObjectBuilder::new()
            .schema_type(of(Type::Object, nullable))
            .description(Some("Skill name to level, 0 to 100."))
            .property_names(Some(name()))
            .additional_properties(Some(level(100)))
            .max_properties(Some(MAX_ITEMS))
            .build()
            .into()
    }

    fn capacity_map(nullable: bool) -> Schema {
        ObjectBuilder::new()
            .schema_type(of(Type::Object, nullable))
            .description(Some(
                "Tasks at once per channel; voice 1 when not given, other channels 0.",
            ))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(Channel::ALL.map(Channel::as_str)))
                    .build(),
            ))
            .additional_properties(Some(level(MAX_CAPACITY)))
            .build()
            .into()
    }

    fn attribute_map(nullable: bool) -> Schema {
        ObjectBuilder::new()
            .schema_type(of(Type::Object, nullable))
            .description(Some(
                "Further attributes target expressions may name (`attributes.site`); \
                 at most 16 KiB of JSON.",
            ))
            .property_names(Some(name()))
            .max_properties(Some(MAX_ITEMS))
            .build()
            .into()
    }

    pub fn groups() -> Schema {
        group_set(false)
    }

    pub fn groups_patch() -> Schema {
        group_set(true)
    }

    pub fn skills() -> Schema {
        skill_map(false)
    }

    pub fn skills_patch() -> Schema {
        skill_map(true)
    }

    pub fn capacity() -> Schema {
        capacity_map(false)
    }

    pub fn capacity_patch() -> Schema {
        capacity_map(true)
    }

    pub fn attributes() -> Schema {
        attribute_map(false)
    }

    pub fn attributes_patch() -> Schema {
        attribute_map(true)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub id: AgentId,
    pub spec: AgentSpec,
    pub activity: String,
    pub activity_since: DateTime<Utc>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Agent {
    pub fn capacity(&self, channel: Channel) -> u32 {
        self.spec.capacity.get(&channel).copied().unwrap_or(0)
    }
}

/// How a queue picks among the free agents it may offer a task to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The agent free for the longest time on the task's channel.
    #[default]
    LongestIdle,
    /// The agent this queue offered work to least recently.
    RoundRobin,
    /// The agent with the fewest tasks today on the channel.
    FewestTasksToday,
    /// The agent with the least talk time today on the channel.
    LeastTalkTime,
    /// The highest level in the queue's skill (`strategy_skill`, or the first
    /// skill its target names), then the longest idle.
    BestSkill,
    /// Any free agent, at random.
    Random,
}

/// When a task leaves its queue for another queue or a final outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The task has waited `after_seconds` in the queue.
    Wait,
    /// The task has waited the queue's `max_wait_seconds`.
    MaxWait,
    /// The queue held `max_size` waiting tasks when the task arrived.
    Full,
    /// No agent who may take the queue's tasks is signed in (checked on arrival
    /// and when the last such agent signs out).
    NoAgents,
    /// The task arrived outside the queue's business hours.
    Closed,
}

/// Where an overflowing task goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Destination {
    /// Another queue, by name; the task keeps its place by arrival time.
    Queue(String),
    /// A final outcome.
    Outcome(FinalOutcome),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FinalOutcome {
    /// The caller leaves a message; the task ends (the switch plays voicemail).
    Voicemail,
    /// The task becomes a callback to the calling number, keeping its place
    /// (voicemail when there is no number).
    Callback,
    /// The switch disconnects the call with an announcement; the task ends.
    Disconnect,
}

impl FinalOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Voicemail => "voicemail",
            Self::Callback => "callback",
            Self::Disconnect => "disconnect",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverflowRule {
    pub when: Trigger,
    /// For `wait`: after how long in the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_seconds: Option<u32>,
    pub to: Destination,
}

/// A wider target once a task has waited `after_seconds` (skill relaxation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelaxationStep {
    /// Later than the step before.
    #[schema(minimum = 1)]
    pub after_seconds: u32,
    pub target: String,
}

/// What a client sends to create or replace a queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: String,
    /// Which agents may take its tasks (docs/api/routing.md#target-expressions);
    /// `true` for every agent.
    pub target: String,
    /// Wider targets as the wait grows, in order of `after_seconds`.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub relaxation: Vec<RelaxationStep>,
    /// Added to its tasks' priorities: an agent serving several queues takes
    /// the higher-priority queue's tasks first.
    #[serde(default)]
    #[schema(minimum = -1000, maximum = 1000)]
    pub priority: i32,
    #[serde(default)]
    pub strategy: Strategy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub strategy_skill: Option<String>,
    /// Answered within this many seconds counts toward the service level.
    #[serde(default = "default_service_level")]
    #[schema(minimum = 1, maximum = 3600)]
    pub service_level_seconds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_wait_seconds: Option<u32>,
    /// Tried in order; the first rule whose trigger holds applies.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub overflow: Vec<OverflowRule>,
    /// After-call work: how long an agent stays in wrap-up after a task ends.
    #[serde(default)]
    #[schema(maximum = 3600)]
    pub wrap_up_seconds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_hours: Option<BusinessHours>,
    /// The handle time estimated waits assume until the queue has history.
    #[serde(default = "default_handle_time")]
    #[schema(minimum = 1, maximum = 86400)]
    pub expected_handle_seconds: u32,
    /// How long an offer rings before it is withdrawn; `routing.offer_timeout` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 600)]
    pub offer_timeout_seconds: Option<u32>,
}

fn default_service_level() -> u32 {
    20
}

fn default_handle_time() -> u32 {
    180
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Queue {
    pub id: QueueId,
    pub spec: QueueSpec,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Picks the queue (and a priority boost) for a task that names none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryRule {
    #[serde(default)]
    #[schema(
        max_length = 200,
        pattern = r"^([^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*)?$"
    )]
    pub name: String,
    /// An expression over the task: channel, kind, calling_number,
    /// dialled_number, ivr.<key>, attributes.<key>, priority, customer.vip_level,
    /// customer.tags, customer.known.
    pub when: String,
    /// Queue name.
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub queue: String,
    #[serde(default)]
    #[schema(minimum = -1000, maximum = 1000)]
    pub priority: i32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// A call or contact that came in.
    #[default]
    Inbound,
    /// A caller's request to be called back, keeping their place.
    Callback,
    /// Outbound work: a dial request, a survey call.
    Outbound,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Callback => "callback",
            Self::Outbound => "outbound",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting in a queue.
    Pending,
    /// Offered to one agent, who has not answered yet.
    Reserved,
    /// Accepted: the agent works on it.
    Assigned,
    /// Ended; the agent is in after-call work.
    Wrapping,
    Completed,
    Canceled,
    /// The caller hung up before an agent answered.
    Abandoned,
    /// Left its queue for a final outcome (voicemail, disconnect, timed out, ...).
    Overflowed,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Reserved => "reserved",
            Self::Assigned => "assigned",
            Self::Wrapping => "wrapping",
            Self::Completed => "completed",
            Self::Canceled => "canceled",
            Self::Abandoned => "abandoned",
            Self::Overflowed => "overflowed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Reserved,
            Self::Assigned,
            Self::Wrapping,
            Self::Completed,
            Self::Canceled,
            Self::Abandoned,
            Self::Overflowed,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Canceled | Self::Abandoned | Self::Overflowed
        )
    }

    /// Still waiting for an agent: counts in the queue.
    pub fn is_waiting(self) -> bool {
        matches!(self, Self::Pending | Self::Reserved)
    }
}

/// The agent a task is offered to now (kept once accepted: its offer time
/// starts the agent's handle time).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reservation {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub offered_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Callback {
    /// The number to call back.
    pub number: String,
    /// Calls to it that found nobody so far.
    pub failed_attempts: u32,
    pub requested_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    /// The switch's call id or the client's own id; unique.
    pub external_id: Option<String>,
    pub kind: TaskKind,
    pub channel: Channel,
    pub queue_id: QueueId,
    pub status: TaskStatus,
    pub priority: i32,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub calling_number: Option<String>,
    pub dialled_number: Option<String>,
    pub ivr: BTreeMap<String, String>,
    /// The screen pop found for the calling number (identity's candidates).
    pub customer: Option<serde_json::Value>,
    /// Set when the screen pop found exactly one customer.
    pub customer_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When it entered its current queue (relaxation and wait rules count from here).
    pub queued_at: DateTime<Utc>,
    /// Its place: earlier is served first (at equal priority).
    pub rank_at: DateTime<Utc>,
    /// Relaxation steps passed in the current queue.
    pub step: u32,
    pub reservation: Option<Reservation>,
    pub first_offered_at: Option<DateTime<Utc>>,
    pub agent_id: Option<AgentId>,
    /// When an agent first answered it (speed of answer and service level count to here).
    pub answered_at: Option<DateTime<Utc>>,
    /// When its current agent accepted it.
    pub assigned_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub wrap_up_until: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    /// Agents that rejected it in this queue: not offered it again here.
    pub declined_by: Vec<AgentId>,
    /// Queues it overflowed or was transferred out of, in order.
    pub visited: Vec<QueueId>,
    pub callback: Option<Callback>,
    /// Not offered before this (a callback's next attempt).
    pub not_before: Option<DateTime<Utc>>,
    pub resumed_from: Option<TaskId>,
    /// Offered only to this agent (a transfer or an outbound call for one agent).
    pub target_agent: Option<AgentId>,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

/// A limit on the size of what clients send.
pub const MAX_NAME: usize = 200;
const MAX_ITEMS: usize = 50;
pub const MAX_CAPACITY: u32 = 100;
pub const MAX_PRIORITY: i32 = 1000;

fn field(pointer: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        pointer: pointer.into(),
        message: message.into(),
    }
}

/// Checks a name-like value: non-empty, plain text, bounded.
pub fn check_name(pointer: &str, value: &str, problems: &mut Vec<FieldError>) {
    if value.trim().is_empty() {
        problems.push(field(pointer, "must not be empty"));
    } else if value.chars().count() > MAX_NAME {
        problems.push(field(pointer, format!("at most {MAX_NAME} characters")));
    } else if !hotline_kit::rest::is_plain_text(value) {
        problems.push(field(pointer, hotline_kit::rest::CONTROL_CHARACTERS));
    }
}

/// Checks an expression and names where it fails.
pub fn check_expression(pointer: &str, source: &str, problems: &mut Vec<FieldError>) {
    if let Err(error) = expr::parse(source) {
        problems.push(field(pointer, format!("not a valid expression: {error}")));
    }
}

fn check_attributes(
    pointer: &str,
    attributes: &serde_json::Map<String, serde_json::Value>,
    problems: &mut Vec<FieldError>,
) {
    if attributes.len() > MAX_ITEMS {
        problems.push(field(pointer, format!("at most {MAX_ITEMS} attributes")));
    }
    for key in attributes.keys() {
        check_name(&format!("{pointer}/{key}"), key, problems);
    }
    if serde_json::to_string(attributes).is_ok_and(|text| text.len() > 16 * 1024) {
        problems.push(field(pointer, "at most 16 KiB of attributes"));
    }
}

impl AgentSpec {
    /// Validates, filling in the default capacity (one call at a time).
    pub fn validated(mut self) -> Result<Self, Vec<FieldError>> {
        let mut problems = Vec::new();
        check_name("/name", &self.name, &mut problems);
        if let Some(login) = &self.login {
            check_name("/login", login, &mut problems);
        }
        if self.groups.len() > MAX_ITEMS {
            problems.push(field("/groups", format!("at most {MAX_ITEMS} groups")));
        }
        for group in &self.groups {
            check_name("/groups", group, &mut problems);
        }
        if self.skills.len() > MAX_ITEMS {
            problems.push(field("/skills", format!("at most {MAX_ITEMS} skills")));
        }
        for (skill, level) in &self.skills {
            check_name(&format!("/skills/{skill}"), skill, &mut problems);
            if *level > 100 {
                problems.push(field(format!("/skills/{skill}"), "levels go from 0 to 100"));
            }
        }
        for (channel, capacity) in &self.capacity {
            if *capacity > MAX_CAPACITY {
                problems.push(field(
                    format!("/capacity/{}", channel.as_str()),
                    format!("at most {MAX_CAPACITY}"),
                ));
            }
        }
        check_attributes("/attributes", &self.attributes, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        self.capacity.entry(Channel::Voice).or_insert(1);
        Ok(self)
    }

    pub fn patched(&self, patch: AgentPatch) -> Self {
        Self {
            name: patch.name.unwrap_or_else(|| self.name.clone()),
            login: patch.login.or_else(|| self.login.clone()),
            groups: patch.groups.unwrap_or_else(|| self.groups.clone()),
            skills: patch.skills.unwrap_or_else(|| self.skills.clone()),
            capacity: patch.capacity.unwrap_or_else(|| self.capacity.clone()),
            attributes: patch.attributes.unwrap_or_else(|| self.attributes.clone()),
        }
    }
}

impl QueueSpec {
    pub fn problems(&self) -> Vec<FieldError> {
        let mut problems = Vec::new();
        check_name("/name", &self.name, &mut problems);
        if self.description.chars().count() > 2000 {
            problems.push(field("/description", "at most 2000 characters"));
        }
        check_expression("/target", &self.target, &mut problems);
        if self.relaxation.len() > 10 {
            problems.push(field("/relaxation", "at most 10 steps"));
        }
        let mut previous = 0;
        for (index, step) in self.relaxation.iter().enumerate() {
            check_expression(
                &format!("/relaxation/{index}/target"),
                &step.target,
                &mut problems,
            );
            if step.after_seconds == 0 || step.after_seconds <= previous {
                problems.push(field(
                    format!("/relaxation/{index}/after_seconds"),
                    "steps must come later and later, after more than 0 seconds",
                ));
            }
            previous = step.after_seconds;
        }
        if !(-MAX_PRIORITY..=MAX_PRIORITY).contains(&self.priority) {
            problems.push(field(
                "/priority",
                format!("between -{MAX_PRIORITY} and {MAX_PRIORITY}"),
            ));
        }
        if let Some(skill) = &self.strategy_skill {
            check_name("/strategy_skill", skill, &mut problems);
        }
        if self.strategy == Strategy::BestSkill
            && self.strategy_skill.is_none()
            && expr::parse(&self.target).is_ok_and(|target| target.skills().is_empty())
        {
            problems.push(field(
                "/strategy_skill",
                "best_skill needs a skill: name one, or compare one in the target",
            ));
        }
        if self.service_level_seconds == 0 || self.service_level_seconds > 3600 {
            problems.push(field("/service_level_seconds", "between 1 and 3600"));
        }
        if self.max_size == Some(0) {
            problems.push(field("/max_size", "at least 1 (leave it out for no limit)"));
        }
        if self.max_wait_seconds == Some(0) {
            problems.push(field(
                "/max_wait_seconds",
                "at least 1 (leave it out for no limit)",
            ));
        }
        if self.overflow.len() > 10 {
            problems.push(field("/overflow", "at most 10 rules"));
        }
        for (index, rule) in self.overflow.iter().enumerate() {
            let pointer = format!("/overflow/{index}");
            match (rule.when, rule.after_seconds) {
                (Trigger::Wait, None | Some(0)) => problems.push(field(
                    format!("{pointer}/after_seconds"),
                    "a wait rule needs after_seconds > 0",
                )),
                (Trigger::Wait, Some(_)) => {}
                (Trigger::MaxWait, _) if self.max_wait_seconds.is_none() => problems.push(field(
                    format!("{pointer}/when"),
                    "max_wait needs the queue's max_wait_seconds",
                )),
                (Trigger::Full, _) if self.max_size.is_none() => problems.push(field(
                    format!("{pointer}/when"),
                    "full needs the queue's max_size",
                )),
                (Trigger::Closed, _) if self.business_hours.is_none() => problems.push(field(
                    format!("{pointer}/when"),
                    "closed needs the queue's business_hours",
                )),
                (_, Some(_)) => problems.push(field(
                    format!("{pointer}/after_seconds"),
                    "only wait rules take after_seconds",
                )),
                (Trigger::MaxWait | Trigger::Full | Trigger::NoAgents | Trigger::Closed, None) => {}
            }
            match &rule.to {
                Destination::Queue(name) if name == &self.name => problems.push(field(
                    format!("{pointer}/to/queue"),
                    "a queue cannot overflow into itself",
                )),
                Destination::Queue(name) => {
                    check_name(&format!("{pointer}/to/queue"), name, &mut problems)
                }
                Destination::Outcome(_) => {}
            }
        }
        if self.wrap_up_seconds > 3600 {
            problems.push(field("/wrap_up_seconds", "at most 3600"));
        }
        if self.expected_handle_seconds == 0 || self.expected_handle_seconds > 24 * 3600 {
            problems.push(field("/expected_handle_seconds", "between 1 and 86400"));
        }
        if let Some(timeout) = self.offer_timeout_seconds
            && !(1..=600).contains(&timeout)
        {
            problems.push(field("/offer_timeout_seconds", "between 1 and 600"));
        }
        if let Some(hours) = &self.business_hours {
            for (pointer, message) in hours.problems() {
                problems.push(field(format!("/business_hours{pointer}"), message));
            }
        }
        problems
    }

    /// The target of each step: the queue's own, then each relaxation's.
    pub fn step_targets(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.target.as_str())
            .chain(self.relaxation.iter().map(|s| s.target.as_str()))
    }

    /// The skill best-skill ranks by.
    pub fn ranking_skill(&self) -> Option<String> {
        self.strategy_skill.clone().or_else(|| {
            expr::parse(&self.target)
                .ok()
                .and_then(|target| target.skills().into_iter().next())
        })
    }
}

impl EntryRule {
    pub fn problems(&self, index: usize) -> Vec<FieldError> {
        let mut problems = Vec::new();
        if !self.name.is_empty() {
            check_name(&format!("/{index}/name"), &self.name, &mut problems);
        }
        check_expression(&format!("/{index}/when"), &self.when, &mut problems);
        check_name(&format!("/{index}/queue"), &self.queue, &mut problems);
        if !(-MAX_PRIORITY..=MAX_PRIORITY).contains(&self.priority) {
            problems.push(field(format!("/{index}/priority"), "out of range"));
        }
        problems
    }
}

impl Activity {
    pub fn problems(&self) -> Vec<FieldError> {
        let mut problems = Vec::new();
        check_name("/name", &self.name, &mut problems);
        if self.description.chars().count() > 500 {
            problems.push(field("/description", "at most 500 characters"));
        }
        if self.name == OFFLINE && self.available {
            problems.push(field("/available", "offline is never available"));
        }
        problems
    }
}

/// The activities a new installation starts with.
pub fn default_activities() -> Vec<Activity> {
    [
        (OFFLINE, false, "signed off"),
        (READY, true, "ready for work"),
        (
            "not_ready",
            false,
            "signed in, not taking work (an offer went unanswered)",
        ),
        ("break", false, "short break"),
        ("lunch", false, "meal break"),
        ("training", false, "in training or coaching"),
        ("meeting", false, "in a meeting"),
    ]
    .into_iter()
    .map(|(name, available, description)| Activity {
        name: name.to_owned(),
        available,
        description: description.to_owned(),
    })
    .collect()
}
