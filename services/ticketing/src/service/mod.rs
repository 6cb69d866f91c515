//! Ticketing's use cases. REST and gRPC call only these; each change is one
//! transaction that writes the order, its history row and its events.

mod dispatch;
mod sms;
mod sms_delivery;
mod webhooks;

pub use sms_delivery::SmsOutcome;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use hotline_kit::{
    ApiError, ApiResult, ErrorCode,
    auth::{Principal, Role},
    cache::Cache,
    calendar::BusinessHours,
    clock::Clock,
    db::is_unique_violation,
    error::Problems,
    idempotency::{IdempotencyKey, StoredResponse},
    inbox,
    lease::{self, FenceError, Grant},
    mask,
    outbox::Outbox,
    rest::{self, Page},
    timers::{self, Timer},
};
use hotline_proto::{
    clients::IdentityApi,
    identity::v1::{Customer, PhoneLabel},
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend,
    DatabaseConnection, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    TransactionTrait, sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Mutex;
use uuid::Uuid;

use self::{
    dispatch::{Claimed, Outcome, Trigger},
    sms::Purpose,
};
use crate::{
    config::Settings,
    domain::{
        number,
        order::{Action, Status},
        setup::{AssigneeKind, Checks, MAX_NAME, Priority, e164},
        sla::{Clocks, Deadline, Policy},
    },
    events::{self, Change},
    input::{
        AssigneePatch, MAX_ADDRESS, MAX_REASON, MAX_TEXT, NewAssignee, NewNode, NewNote,
        NewResolutionCode, NewWorkOrder, NewWorkOrderType, SlaPolicyInput, Step, WorkOrderPatch,
    },
    store::{
        self, OrderFilter, Scope, assignee, category, history, note, region, resolution_code,
        scope::{STAFF, not_found},
        sla_policy, work_order, work_order_type,
    },
    views::{
        AssigneeView, HistoryView, NodeView, NoteView, ResolutionCodeView, SlaPolicyView,
        WorkOrderTypeView, WorkOrderView, status_of,
    },
};

/// Adds a node to one of the two trees of one shape (categories, regions):
/// checked, placed under its parent, refused with `$exists` when taken.
macro_rules! create_node {
    ($service:ident, $principal:ident, $input:ident, $table:ident, $max_level:expr, $exists:expr) => {{
        $principal.require_any(CONFIGURERS)?;
        TicketingService::check_node(&$input)?;
        let parent = match $input.parent_id {
            None => None,
            Some(id) => Some(
                $table::Entity::find_by_id(id)
                    .one(&$service.db)
                    .await?
                    .map(|p| (p.path, p.level, p.active))
                    .ok_or_else(|| {
                        ApiError::invalid_field(
                            "/parent_id",
                            concat!("no such ", stringify!($table)),
                        )
                    })?,
            ),
        };
        let (path, level) = TicketingService::placed(parent, &$input.code, $max_level)?;
        let row = $table::ActiveModel {
            id: Set(Uuid::now_v7()),
            parent_id: Set($input.parent_id),
            code: Set($input.code.clone()),
            name: Set($input.name.trim().to_owned()),
            path: Set(path.clone()),
            level: Set(level),
            active: Set(true),
            version: Set(1),
            created_at: Set($service.clock.now()),
        };
        match $table::Entity::insert(row)
            .exec_with_returning(&$service.db)
            .await
        {
            Ok(row) => Ok(row.into()),
            Err(error) if is_unique_violation(&error) => Err(($exists)(&$input, &path)),
            Err(error) => Err(error.into()),
        }
    }};
}

/// What a fired timer did.
#[derive(Debug, PartialEq, Eq)]
pub enum Fired {
    Done,
    /// Moved, fired already, or nothing left to do on its order.
    Skipped,
    /// This replica no longer holds the timers' lease: stop firing.
    Lost,
}

/// The history's and the events' actor of what the timers do.
const SYSTEM_ACTOR: &str = "ticketing";
/// The reason of an automatic closing.
const AUTO_CLOSE_REASON: &str = "auto_close";

/// Escalations a slow stream may lag behind before it skips some.
const ESCALATION_BACKLOG: usize = 1024;

/// Who configures ticketing.
const CONFIGURERS: &[Role] = &[Role::Supervisor, Role::Admin];
/// Who may dispatch past an assignee's capacity.
const FORCERS: &[Role] = &[Role::Supervisor, Role::Admin];
/// Regions go city → district → area, with a province above where needed.
const MAX_REGION_LEVELS: i32 = 4;
const MAX_CATEGORY_LEVELS: i32 = 5;
const DEFAULT_CAPACITY: i32 = 10;

/// What an order's snapshot keeps of identity's customer.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Snapshot {
    id: String,
    name: String,
    phone: Option<String>,
    address: Option<String>,
}

fn snapshot(customer: &Customer) -> Snapshot {
    let phone = customer
        .phones
        .iter()
        .find(|phone| phone.label() == PhoneLabel::Mobile)
        .or(customer.phones.first())
        .map(|phone| phone.number.clone());
    let address = customer.addresses.first().map(|a| {
        [
            &a.province,
            &a.city,
            &a.district,
            &a.street,
            &a.building,
            &a.detail,
        ]
        .into_iter()
        .filter(|part| !part.is_empty())
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ")
    });
    Snapshot {
        id: customer.id.clone(),
        name: customer.name.clone(),
        phone,
        address: address.filter(|a| !a.is_empty()),
    }
}

/// Numbers reserved by this replica and not yet used (PostgreSQL).
#[derive(Default)]
struct NumberBlock {
    day: String,
    next: i64,
    last: i64,
}

pub struct TicketingService {
    db: DatabaseConnection,
    outbox: Outbox,
    identity: Arc<dyn IdentityApi>,
    cache: Cache,
    settings: Settings,
    clock: Arc<dyn Clock>,
    numbers: Mutex<NumberBlock>,
    /// Escalations heard on this replica, for the supervisors' streams.
    escalations: tokio::sync::broadcast::Sender<hotline_kit::sse::SseEvent>,
    /// What webhook URLs may point at.
    guard: crate::webhooks::Guard,
}

fn actor_kind(scope: &Scope) -> &'static str {
    if scope.is_staff() { "staff" } else { "partner" }
}

fn illegal(action: Action, status: Status, allowed: &[Action]) -> ApiError {
    let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
    ApiError::conflict(
        "illegal_transition",
        format!(
            "{} is not a step a work order that is {} can take; allowed: {}",
            action.as_str(),
            status.as_str(),
            if names.is_empty() {
                "none, it is final".to_owned()
            } else {
                names.join(", ")
            }
        ),
    )
    .with_extension("current_status", status.as_str())
    .with_extension("allowed_actions", names)
}

/// The part of a category path two orders must share to be the same fault
/// reported again: its first level (`/tv/` of `/tv/itv/no_signal/`).
fn repeat_scope(path: &str) -> &str {
    path.char_indices()
        .filter(|(_, c)| *c == '/')
        .nth(1)
        .map_or(path, |(end, _)| &path[..=end])
}

fn policy_of(row: &sla_policy::Model) -> anyhow::Result<Policy> {
    Ok(Policy {
        first_response: chrono::Duration::seconds(row.first_response_secs),
        resolution: chrono::Duration::seconds(row.resolution_secs),
        hours: row
            .business_hours
            .clone()
            .map(serde_json::from_value::<BusinessHours>)
            .transpose()?,
        pause_on: serde_json::from_value(row.pause_on.clone())?,
        redispatch_on_breach: row.redispatch_on_breach,
    })
}

fn clocks_of(order: &work_order::Model) -> Clocks {
    Clocks {
        response_due_at: order.response_due_at,
        resolution_due_at: order.resolution_due_at,
        responded_at: order.responded_at,
        response_met: order.response_met,
        resolution_met: order.resolution_met,
        used: chrono::Duration::seconds(order.resolution_used_secs),
        running_since: order.resolution_running_since,
        response_warned: order.response_warned,
        resolution_warned: order.resolution_warned,
    }
}

fn write_clocks(row: &mut work_order::ActiveModel, clocks: &Clocks) {
    row.response_due_at = Set(clocks.response_due_at);
    row.resolution_due_at = Set(clocks.resolution_due_at);
    row.responded_at = Set(clocks.responded_at);
    row.response_met = Set(clocks.response_met);
    row.resolution_met = Set(clocks.resolution_met);
    row.resolution_used_secs = Set(clocks.used.num_seconds());
    row.resolution_running_since = Set(clocks.running_since);
    row.response_warned = Set(clocks.response_warned);
    row.resolution_warned = Set(clocks.resolution_warned);
}

/// What one of an order's timers is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OrderTimer {
    Sla(Deadline),
    /// A resolved order closes itself after `ticketing.auto_close_after`.
    AutoClose,
    /// A dispatched order's offer runs out: the next candidate.
    Offer,
    /// A deferred order tries the rules again.
    Redispatch,
}

impl OrderTimer {
    fn all() -> impl Iterator<Item = Self> {
        Deadline::ALL.into_iter().map(Self::Sla).chain([
            Self::AutoClose,
            Self::Offer,
            Self::Redispatch,
        ])
    }

    fn suffix(self) -> &'static str {
        match self {
            Self::Sla(deadline) => deadline.suffix(),
            Self::AutoClose => "close",
            Self::Offer => "offer",
            Self::Redispatch => "redispatch",
        }
    }

    fn parse(suffix: &str) -> Option<Self> {
        [Self::AutoClose, Self::Offer, Self::Redispatch]
            .into_iter()
            .find(|timer| timer.suffix() == suffix)
            .or_else(|| Deadline::parse(suffix).map(Self::Sla))
    }

    /// The timer's row: `wo:<id>:<suffix>`.
    fn at(self, order: Uuid, due_at: DateTime<Utc>) -> Timer {
        Timer {
            key: timer_key(order, self),
            kind: "work_order".to_owned(),
            due_at,
            payload: String::new(),
        }
    }
}

fn timer_key(order: Uuid, timer: OrderTimer) -> String {
    format!("wo:{order}:{}", timer.suffix())
}

/// The order and purpose a timer key names.
fn parse_timer_key(key: &str) -> Option<(Uuid, OrderTimer)> {
    let mut parts = key.splitn(3, ':');
    let (Some("wo"), Some(id), Some(suffix)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    Some((id.parse().ok()?, OrderTimer::parse(suffix)?))
}

fn masked_change(from: Option<&str>, to: Option<&str>) -> serde_json::Value {
    let hide = |value: Option<&str>| value.map(|v| mask::keep_ends(v, 3, 0));
    json!({"from": hide(from), "to": hide(to)})
}

impl TicketingService {
    pub fn new(
        db: DatabaseConnection,
        outbox: Outbox,
        identity: Arc<dyn IdentityApi>,
        cache: Cache,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            db,
            outbox,
            identity,
            cache,
            clock,
            numbers: Mutex::new(NumberBlock::default()),
            escalations: tokio::sync::broadcast::channel(ESCALATION_BACKLOG).0,
            guard: crate::webhooks::Guard::new(
                settings.webhooks.allow_http,
                settings.webhooks.allow_networks.clone(),
            ),
            settings,
        }
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// What webhook URLs may point at.
    pub fn guard(&self) -> &crate::webhooks::Guard {
        &self.guard
    }

    /// Where the escalations this replica hears go.
    pub fn escalation_feed(&self) -> tokio::sync::broadcast::Sender<hotline_kit::sse::SseEvent> {
        self.escalations.clone()
    }

    /// Escalations from now on, for supervisors and admins.
    pub fn watch_escalations(
        &self,
        principal: &Principal,
    ) -> ApiResult<tokio::sync::broadcast::Receiver<hotline_kit::sse::SseEvent>> {
        principal.require_any(CONFIGURERS)?;
        Ok(self.escalations.subscribe())
    }

    // ---- configuration -------------------------------------------------

    pub async fn list_types(&self, principal: &Principal) -> ApiResult<Vec<WorkOrderTypeView>> {
        principal.require_any(STAFF)?;
        let rows = work_order_type::Entity::find()
            .order_by_asc(work_order_type::Column::Key)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn create_type(
        &self,
        principal: &Principal,
        input: NewWorkOrderType,
    ) -> ApiResult<WorkOrderTypeView> {
        principal.require_any(CONFIGURERS)?;
        let mut problems = Problems::default();
        problems.code("/key", &input.key);
        problems.text("/name", &input.name, MAX_NAME);
        problems.finish(()).map_err(ApiError::invalid)?;
        let row = work_order_type::ActiveModel {
            key: Set(input.key.clone()),
            name: Set(input.name.trim().to_owned()),
            default_priority: Set(input.default_priority.as_str().to_owned()),
            active: Set(true),
            version: Set(1),
            created_at: Set(self.clock.now()),
        };
        match work_order_type::Entity::insert(row)
            .exec_with_returning(&self.db)
            .await
        {
            Ok(row) => Ok(row.into()),
            Err(error) if is_unique_violation(&error) => Err(ApiError::conflict(
                "type_exists",
                format!("a work-order type {} exists already", input.key),
            )),
            Err(error) => Err(error.into()),
        }
    }

    pub async fn list_categories(&self, principal: &Principal) -> ApiResult<Vec<NodeView>> {
        principal.require_any(STAFF)?;
        let rows = category::Entity::find()
            .order_by_asc(category::Column::Path)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn list_regions(&self, principal: &Principal) -> ApiResult<Vec<NodeView>> {
        principal.require_any(STAFF)?;
        let rows = region::Entity::find()
            .order_by_asc(region::Column::Path)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    fn check_node(input: &NewNode) -> ApiResult<()> {
        let mut problems = Problems::default();
        problems.code("/code", &input.code);
        problems.text("/name", &input.name, MAX_NAME);
        problems.finish(()).map_err(ApiError::invalid)
    }

    /// The path and level of a new node under `parent` (`None`: a root).
    fn placed(
        parent: Option<(String, i32, bool)>,
        code: &str,
        max_level: i32,
    ) -> ApiResult<(String, i32)> {
        let (path, level) = match parent {
            None => (format!("/{code}/"), 1),
            Some((_, _, false)) => {
                return Err(ApiError::invalid_field(
                    "/parent_id",
                    "the parent is inactive",
                ));
            }
            Some((path, level, true)) => (format!("{path}{code}/"), level + 1),
        };
        if level > max_level {
            return Err(ApiError::invalid_field(
                "/parent_id",
                format!("the tree is at most {max_level} levels deep"),
            ));
        }
        Ok((path, level))
    }

    pub async fn create_category(
        &self,
        principal: &Principal,
        input: NewNode,
    ) -> ApiResult<NodeView> {
        create_node!(
            self,
            principal,
            input,
            category,
            MAX_CATEGORY_LEVELS,
            |input: &NewNode, path: &str| {
                ApiError::conflict(
                    "category_exists",
                    format!("a category {path} exists already (code {})", input.code),
                )
            }
        )
    }

    pub async fn create_region(
        &self,
        principal: &Principal,
        input: NewNode,
    ) -> ApiResult<NodeView> {
        create_node!(
            self,
            principal,
            input,
            region,
            MAX_REGION_LEVELS,
            |input: &NewNode, _: &str| {
                ApiError::conflict(
                    "region_exists",
                    format!("a region with the code {} exists already", input.code),
                )
            }
        )
    }

    /// Partners read the codes too: they resolve with them.
    pub async fn list_resolution_codes(
        &self,
        principal: &Principal,
    ) -> ApiResult<Vec<ResolutionCodeView>> {
        Scope::of(principal)?;
        let rows = resolution_code::Entity::find()
            .order_by_asc(resolution_code::Column::Code)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn create_resolution_code(
        &self,
        principal: &Principal,
        input: NewResolutionCode,
    ) -> ApiResult<ResolutionCodeView> {
        principal.require_any(CONFIGURERS)?;
        let mut problems = Problems::default();
        problems.code("/code", &input.code);
        problems.text("/name", &input.name, MAX_NAME);
        let known: Vec<String> = work_order_type::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| t.key)
            .collect();
        for (index, key) in input.types.iter().enumerate() {
            if !known.contains(key) {
                problems.add(format!("/types/{index}"), "no such work-order type");
            }
        }
        problems.finish(()).map_err(ApiError::invalid)?;
        let row = resolution_code::ActiveModel {
            code: Set(input.code.clone()),
            name: Set(input.name.trim().to_owned()),
            types: Set(json!(input.types)),
            active: Set(true),
            version: Set(1),
            created_at: Set(self.clock.now()),
        };
        match resolution_code::Entity::insert(row)
            .exec_with_returning(&self.db)
            .await
        {
            Ok(row) => Ok(row.into()),
            Err(error) if is_unique_violation(&error) => Err(ApiError::conflict(
                "resolution_code_exists",
                format!("a resolution code {} exists already", input.code),
            )),
            Err(error) => Err(error.into()),
        }
    }

    pub async fn list_assignees(&self, principal: &Principal) -> ApiResult<Vec<AssigneeView>> {
        principal.require_any(STAFF)?;
        let rows = assignee::Entity::find()
            .order_by_asc(assignee::Column::Name)
            .order_by_asc(assignee::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn assignee(&self, principal: &Principal, id: Uuid) -> ApiResult<AssigneeView> {
        principal.require_any(STAFF)?;
        Ok(self.find_assignee(&self.db, id).await?.into())
    }

    async fn find_assignee<C: ConnectionTrait>(
        &self,
        conn: &C,
        id: Uuid,
    ) -> ApiResult<assignee::Model> {
        assignee::Entity::find_by_id(id)
            .one(conn)
            .await?
            .ok_or_else(|| ApiError::not_found("assignee_not_found", "no such assignee"))
    }

    fn check_skills(problems: &mut Problems, skills: &[String]) {
        for (index, skill) in skills.iter().enumerate() {
            problems.code(&format!("/skills/{index}"), skill);
        }
    }

    fn check_capacity(problems: &mut Problems, capacity: Option<i32>) {
        if capacity.is_some_and(|c| !(1..=10_000).contains(&c)) {
            problems.add("/capacity", "must be between 1 and 10000");
        }
    }

    /// An assignee's working hours, checked, as stored.
    fn working_hours(
        problems: &mut Problems,
        hours: Option<&BusinessHours>,
    ) -> ApiResult<Option<serde_json::Value>> {
        let Some(hours) = hours else {
            return Ok(None);
        };
        for (pointer, message) in hours.problems() {
            problems.add(format!("/business_hours{pointer}"), message);
        }
        if hours.weekly.is_empty() {
            problems.add(
                "/business_hours/weekly",
                "it would never take an order; deactivate it instead",
            );
        }
        serde_json::to_value(hours)
            .map(Some)
            .map_err(ApiError::internal)
    }

    /// A technician's phone, unique among active technicians (inbound SMS
    /// tell them apart by it).
    async fn technician_phone(
        &self,
        problems: &mut Problems,
        phone: Option<&str>,
        except: Option<Uuid>,
    ) -> ApiResult<Option<String>> {
        let Some(phone) = phone else {
            return Ok(None);
        };
        let Some(number) = e164(phone, self.settings.region) else {
            problems.add("/phone", "not a valid phone number");
            return Ok(None);
        };
        let mut taken = assignee::Entity::find()
            .filter(assignee::Column::Phone.eq(number.clone()))
            .filter(assignee::Column::Active.eq(true));
        if let Some(id) = except {
            taken = taken.filter(assignee::Column::Id.ne(id));
        }
        if taken.one(&self.db).await?.is_some() {
            problems.add("/phone", "another active technician has this phone");
        }
        Ok(Some(number))
    }

    pub async fn create_assignee(
        &self,
        principal: &Principal,
        input: NewAssignee,
    ) -> ApiResult<AssigneeView> {
        principal.require_any(CONFIGURERS)?;
        let mut problems = Problems::default();
        problems.text("/name", &input.name, MAX_NAME);
        Self::check_skills(&mut problems, &input.skills);
        Self::check_capacity(&mut problems, input.capacity);
        let phone = self
            .technician_phone(&mut problems, input.phone.as_deref(), None)
            .await?;
        let regions = self.covered(&mut problems, &input.region_ids).await?;
        let hours = Self::working_hours(&mut problems, input.business_hours.as_ref())?;
        match input.kind {
            AssigneeKind::Technician => {
                if input.phone.is_none() {
                    problems.add("/phone", "a technician needs a mobile phone");
                }
                if input.partner_id.is_some() {
                    problems.add("/partner_id", "only shops have a partner id");
                }
            }
            AssigneeKind::Shop => match input.partner_id.as_deref() {
                None => problems.add(
                    "/partner_id",
                    "a shop needs the partner id of its API clients",
                ),
                Some(id)
                    if id.is_empty()
                        || id.len() > 64
                        || !id
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) =>
                {
                    problems.add(
                        "/partner_id",
                        "must be 1 to 64 of A-Z, a-z, 0-9, _, . and -",
                    );
                }
                Some(_) => {}
            },
        }
        problems.finish(()).map_err(ApiError::invalid)?;
        let now = self.clock.now();
        let row = assignee::ActiveModel {
            id: Set(Uuid::now_v7()),
            kind: Set(input.kind.as_str().to_owned()),
            name: Set(input.name.trim().to_owned()),
            phone: Set(phone),
            partner_id: Set(input.partner_id.clone()),
            skills: Set(json!(input.skills)),
            capacity: Set(input.capacity.unwrap_or(DEFAULT_CAPACITY)),
            open_orders: Set(0),
            active: Set(true),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
            regions: Set(regions),
            business_hours: Set(hours),
            last_dispatched_at: Set(None),
        };
        match assignee::Entity::insert(row)
            .exec_with_returning(&self.db)
            .await
        {
            Ok(row) => Ok(row.into()),
            Err(error) if is_unique_violation(&error) => Err(ApiError::conflict(
                "partner_exists",
                "another shop has this partner id",
            )),
            Err(error) => Err(error.into()),
        }
    }

    pub async fn update_assignee(
        &self,
        principal: &Principal,
        id: Uuid,
        patch: AssigneePatch,
        if_match: Option<i64>,
    ) -> ApiResult<AssigneeView> {
        principal.require_any(CONFIGURERS)?;
        let current = self.find_assignee(&self.db, id).await?;
        if if_match.is_some_and(|version| version != current.version) {
            return Err(rest::stale_version());
        }
        let mut problems = Problems::default();
        if let Some(name) = &patch.name {
            problems.text("/name", name, MAX_NAME);
        }
        if let Some(skills) = &patch.skills {
            Self::check_skills(&mut problems, skills);
        }
        Self::check_capacity(&mut problems, patch.capacity);
        if patch.phone.is_some() && current.kind != AssigneeKind::Technician.as_str() {
            problems.add("/phone", "only technicians have a phone");
        }
        let phone = self
            .technician_phone(&mut problems, patch.phone.as_deref(), Some(id))
            .await?;
        let regions = match &patch.region_ids {
            Some(ids) => Some(self.covered(&mut problems, ids).await?),
            None => None,
        };
        let hours = Self::working_hours(&mut problems, patch.business_hours.as_ref())?;
        if patch.clear_business_hours && patch.business_hours.is_some() {
            problems.add(
                "/clear_business_hours",
                "either new hours or none, not both",
            );
        }
        problems.finish(()).map_err(ApiError::invalid)?;
        let version = current.version;
        let mut row = current.into_active_model();
        if let Some(name) = patch.name {
            row.name = Set(name.trim().to_owned());
        }
        if phone.is_some() {
            row.phone = Set(phone);
        }
        if let Some(skills) = patch.skills {
            row.skills = Set(json!(skills));
        }
        if let Some(capacity) = patch.capacity {
            row.capacity = Set(capacity);
        }
        if let Some(active) = patch.active {
            row.active = Set(active);
        }
        if let Some(regions) = regions {
            row.regions = Set(regions);
        }
        if hours.is_some() || patch.clear_business_hours {
            row.business_hours = Set(hours);
        }
        row.version = Set(version + 1);
        row.updated_at = Set(self.clock.now());
        hotline_kit::db::update_at_version(
            &self.db,
            row,
            assignee::Column::Id.eq(id),
            assignee::Column::Version,
            version,
        )
        .await?
        .map(Into::into)
        .ok_or_else(rest::stale_version)
    }

    // ---- work orders ---------------------------------------------------

    /// The customer's name, phone and address from identity, with the
    /// caller's token; cached a few minutes.
    async fn customer(&self, principal: &Principal, id: &str) -> ApiResult<Snapshot> {
        let key = self.cache.key("customer", id);
        if let Some(cached) = self.cache.get_json::<Snapshot>(&key).await {
            return Ok(cached);
        }
        let customer = match self.identity.get_customer(principal, id).await {
            Ok(customer) => customer,
            Err(error) if error.code == ErrorCode::NotFound => {
                return Err(ApiError::invalid_field("/customer_id", "no such customer"));
            }
            Err(error) => return Err(error),
        };
        let snapshot = snapshot(&customer);
        self.cache
            .set_json(&key, &snapshot, self.settings.customer_cache_ttl)
            .await;
        Ok(snapshot)
    }

    pub async fn forget_customer(&self, id: &str) {
        self.cache.delete(&[self.cache.key("customer", id)]).await;
    }

    /// A number from this replica's block (PostgreSQL), reserved in its own
    /// short transaction before the order's begins, so a request never holds
    /// two connections; `None` on SQLite, which counts inside the order's
    /// transaction ([`Self::counted_number`]) for numbers without gaps.
    async fn block_number(&self, now: DateTime<Utc>) -> ApiResult<Option<String>> {
        if self.db.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(None);
        }
        let day = number::day(now, self.settings.time_zone);
        let mut block = self.numbers.lock().await;
        if block.day != day || block.next > block.last {
            let size = self.settings.number_block;
            let last = store::reserve_numbers(&self.db, &day, size).await?;
            *block = NumberBlock {
                day: day.clone(),
                next: last - size + 1,
                last,
            };
        }
        let count = block.next;
        block.next += 1;
        Ok(Some(number::format(&day, count)))
    }

    async fn counted_number<C: ConnectionTrait>(
        &self,
        txn: &C,
        now: DateTime<Utc>,
    ) -> ApiResult<String> {
        let day = number::day(now, self.settings.time_zone);
        let last = store::reserve_numbers(txn, &day, 1).await?;
        Ok(number::format(&day, last))
    }

    async fn active_type(&self, key: &str) -> ApiResult<Option<work_order_type::Model>> {
        Ok(work_order_type::Entity::find_by_id(key.to_owned())
            .one(&self.db)
            .await?
            .filter(|t| t.active))
    }

    async fn active_category(&self, id: Uuid) -> ApiResult<Option<category::Model>> {
        Ok(category::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|c| c.active))
    }

    async fn active_region(&self, id: Uuid) -> ApiResult<Option<region::Model>> {
        Ok(region::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|r| r.active))
    }

    fn check_optional_text(
        problems: &mut Problems,
        pointer: &str,
        value: Option<&str>,
        max: usize,
    ) {
        if let Some(value) = value {
            problems.text(pointer, value, max);
        }
    }

    pub async fn create_order(
        &self,
        principal: &Principal,
        input: NewWorkOrder,
        idempotency: Option<IdempotencyKey>,
    ) -> ApiResult<(WorkOrderView, bool)> {
        principal.require_any(STAFF)?;
        let scope = Scope::Staff;
        if let Some(key) = &idempotency
            && let Some(stored) = key.find(&self.db).await?
        {
            return Ok((self.replay(&stored, &scope).await?, false));
        }
        let mut problems = Problems::default();
        if input.description.trim().is_empty() {
            problems.add("/description", "must not be empty");
        }
        problems.prose("/description", &input.description, MAX_TEXT);
        Self::check_optional_text(
            &mut problems,
            "/contact_name",
            input.contact_name.as_deref(),
            MAX_NAME,
        );
        Self::check_optional_text(
            &mut problems,
            "/service_address",
            input.service_address.as_deref(),
            MAX_ADDRESS,
        );
        Self::check_optional_text(
            &mut problems,
            "/source_task_id",
            input.source_task_id.as_deref(),
            MAX_NAME,
        );
        Self::check_optional_text(
            &mut problems,
            "/call_id",
            input.call_id.as_deref(),
            MAX_NAME,
        );
        let contact_phone = match input.contact_phone.as_deref() {
            None => None,
            Some(phone) => {
                let number = e164(phone, self.settings.region);
                if number.is_none() {
                    problems.add("/contact_phone", "not a valid phone number");
                }
                number
            }
        };
        if input.customer_id.is_none() && input.contact_phone.is_none() {
            problems.add(
                "/customer_id",
                "name the customer, or give a contact_phone for a caller without a customer record",
            );
        }
        let order_type = self.active_type(&input.type_key).await?;
        if order_type.is_none() {
            problems.add("/type", "no such active work-order type");
        }
        let category = self.active_category(input.category_id).await?;
        if category.is_none() {
            problems.add("/category_id", "no such active category");
        }
        let region = self.active_region(input.region_id).await?;
        if region.is_none() {
            problems.add("/region_id", "no such active region");
        }
        problems.finish(()).map_err(ApiError::invalid)?;
        let (Some(order_type), Some(category), Some(region)) = (order_type, category, region)
        else {
            return Err(ApiError::internal(anyhow::anyhow!(
                "validated lookups missing"
            )));
        };
        let customer = match &input.customer_id {
            Some(id) => Some(self.customer(principal, id).await?),
            None => None,
        };
        let priority = input
            .priority
            .or_else(|| Priority::parse(&order_type.default_priority))
            .unwrap_or(Priority::Normal);
        let now = self.clock.now();
        let policy = self
            .policy(&self.db, &order_type.key, priority.as_str())
            .await?;
        let clocks = policy
            .as_ref()
            .map(|policy| policy.start(now, self.settings.time_zone))
            .unwrap_or_default();
        let repeat_of = match &customer {
            Some(customer) => self.repeated(&customer.id, &category.path, now).await?,
            None => None,
        };
        let id = Uuid::now_v7();
        let reserved = self.block_number(now).await?;
        let txn = self.db.begin().await?;
        let number = match reserved {
            Some(number) => number,
            None => self.counted_number(&txn, now).await?,
        };
        let row = work_order::ActiveModel {
            id: Set(id),
            number: Set(number),
            type_key: Set(order_type.key),
            category_id: Set(category.id),
            category_path: Set(category.path),
            priority: Set(priority.as_str().to_owned()),
            status: Set(Status::New.as_str().to_owned()),
            customer_id: Set(customer.as_ref().map(|c| c.id.clone())),
            customer_name: Set(input
                .contact_name
                .map(|name| name.trim().to_owned())
                .or_else(|| customer.as_ref().map(|c| c.name.clone()))),
            customer_phone: Set(
                contact_phone.or_else(|| customer.as_ref().and_then(|c| c.phone.clone()))
            ),
            customer_address: Set(customer.as_ref().and_then(|c| c.address.clone())),
            service_address: Set(input
                .service_address
                .map(|a| a.trim().to_owned())
                .or_else(|| customer.as_ref().and_then(|c| c.address.clone()))),
            region_id: Set(region.id),
            region_path: Set(region.path),
            source_task_id: Set(input.source_task_id),
            call_id: Set(input.call_id),
            description: Set(input.description.trim().to_owned()),
            resolution_code: Set(None),
            resolution_note: Set(None),
            assignee_id: Set(None),
            partner_id: Set(None),
            created_by: Set(principal.subject.clone()),
            created_at: Set(now),
            updated_at: Set(now),
            resolved_at: Set(None),
            closed_at: Set(None),
            version: Set(1),
            repeat_of: Set(repeat_of),
            ..Default::default()
        };
        let mut row = row;
        write_clocks(&mut row, &clocks);
        let order = work_order::Entity::insert(row)
            .exec_with_returning(&txn)
            .await?;
        // A new order has no timers to replace.
        timers::schedule(&txn, &self.timers_of(&order, policy.as_ref())).await?;
        self.record(
            &txn,
            &order,
            (&principal.subject, actor_kind(&scope)),
            "created",
            None,
            json!({}),
            "shared",
        )
        .await?;
        self.announce(
            &txn,
            Change {
                kind: events::TICKET_CREATED,
                order: &order,
                previous: None,
                assignee_kind: None,
                actor: &principal.subject,
                reason: None,
                at: now,
                escalation: None,
            },
        )
        .await?;
        // Saved before the dispatch, which locks the assignee's row: what
        // follows the claim holds every other order for that assignee.
        if let Some(key) = &idempotency {
            // The key remembers which order it made, not the response body:
            // no personal data lingers in the idempotency table.
            let stored = StoredResponse {
                status: 201,
                body: json!({ "id": id }).to_string(),
                location: Some(format!("/api/v1/work-orders/{id}")),
            };
            if let Err(error) = key.save(&txn, &stored).await {
                drop(txn);
                if is_unique_violation(&error)
                    && let Some(stored) = key.find(&self.db).await?
                {
                    return Ok((self.replay(&stored, &scope).await?, false));
                }
                return Err(error.into());
            }
        }
        let order = self.dispatch_new(&txn, order).await?;
        txn.commit().await?;
        self.outbox.wake();
        tracing::info!(work_order_id = %id, number = %order.number, "work order created");
        Ok((WorkOrderView::of(order, &scope), true))
    }

    async fn replay(&self, stored: &StoredResponse, scope: &Scope) -> ApiResult<WorkOrderView> {
        let id = serde_json::from_str::<serde_json::Value>(&stored.body)
            .ok()
            .and_then(|body| body["id"].as_str().and_then(|id| id.parse::<Uuid>().ok()))
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("unreadable idempotency record")))?;
        let order = work_order::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(not_found)?;
        Ok(WorkOrderView::of(order, scope))
    }

    /// An order by id or number, if `scope` reaches it.
    async fn find_order<C: ConnectionTrait>(
        &self,
        conn: &C,
        scope: &Scope,
        reference: &str,
        lock: bool,
    ) -> ApiResult<work_order::Model> {
        let select = if let Ok(id) = reference.parse::<Uuid>() {
            work_order::Entity::find_by_id(id)
        } else if let Some(number) = number::normalize(reference) {
            work_order::Entity::find().filter(work_order::Column::Number.eq(number))
        } else {
            return Err(not_found());
        };
        let select = if lock {
            store::for_update(conn, select)
        } else {
            select
        };
        let order = select.one(conn).await?.ok_or_else(not_found)?;
        scope.require(&order)?;
        Ok(order)
    }

    pub async fn order(&self, principal: &Principal, reference: &str) -> ApiResult<WorkOrderView> {
        let scope = Scope::of(principal)?;
        let order = self.find_order(&self.db, &scope, reference, false).await?;
        Ok(WorkOrderView::of(order, &scope))
    }

    pub async fn list_orders(
        &self,
        principal: &Principal,
        mut filter: OrderFilter,
        category_id: Option<Uuid>,
        region_id: Option<Uuid>,
        cursor: Option<&str>,
        limit: Option<u64>,
    ) -> ApiResult<Page<WorkOrderView>> {
        let scope = Scope::of(principal)?;
        if !scope.is_staff() {
            // A shop filters by what it sees; the customer id is not among it.
            filter.customer_id = None;
        }
        if let Some(id) = category_id {
            let category = category::Entity::find_by_id(id)
                .one(&self.db)
                .await?
                .ok_or_else(|| ApiError::bad_request("invalid_query", "no such category"))?;
            filter.category_path = Some(category.path);
        }
        if let Some(id) = region_id {
            let region = region::Entity::find_by_id(id)
                .one(&self.db)
                .await?
                .ok_or_else(|| ApiError::bad_request("invalid_query", "no such region"))?;
            filter.region_path = Some(region.path);
        }
        let after = cursor
            .map(rest::decode_cursor::<(DateTime<Utc>, Uuid)>)
            .transpose()?;
        let limit = rest::page_limit(limit);
        let rows = store::list_orders(&self.db, &scope, &filter, after, limit + 1).await?;
        Ok(Page::cut(rows, limit, |order| (order.created_at, order.id))
            .map(|order| WorkOrderView::of(order, &scope)))
    }

    pub async fn update_order(
        &self,
        principal: &Principal,
        reference: &str,
        patch: WorkOrderPatch,
        if_match: Option<i64>,
    ) -> ApiResult<WorkOrderView> {
        principal.require_any(STAFF)?;
        let scope = Scope::Staff;
        let mut problems = Problems::default();
        if let Some(description) = &patch.description {
            if description.trim().is_empty() {
                problems.add("/description", "must not be empty");
            }
            problems.prose("/description", description, MAX_TEXT);
        }
        Self::check_optional_text(
            &mut problems,
            "/service_address",
            patch.service_address.as_deref(),
            MAX_ADDRESS,
        );
        let category = match patch.category_id {
            Some(id) => {
                let found = self.active_category(id).await?;
                if found.is_none() {
                    problems.add("/category_id", "no such active category");
                }
                found
            }
            None => None,
        };
        let region = match patch.region_id {
            Some(id) => {
                let found = self.active_region(id).await?;
                if found.is_none() {
                    problems.add("/region_id", "no such active region");
                }
                found
            }
            None => None,
        };
        problems.finish(()).map_err(ApiError::invalid)?;
        let txn = self.db.begin().await?;
        let order = self.find_order(&txn, &scope, reference, true).await?;
        if if_match.is_some_and(|version| version != order.version) {
            return Err(rest::stale_version());
        }
        let status = status_of(&order);
        if !status.is_open() {
            return Err(ApiError::conflict(
                "work_order_final",
                format!(
                    "a work order that is {} can't be changed; reopen it first",
                    status.as_str()
                ),
            ));
        }
        let mut changes = serde_json::Map::new();
        let mut row = order.clone().into_active_model();
        if let Some(priority) = patch.priority
            && priority.as_str() != order.priority
        {
            changes.insert(
                "priority".into(),
                json!({"from": order.priority, "to": priority.as_str()}),
            );
            row.priority = Set(priority.as_str().to_owned());
        }
        if let Some(category) = category
            && category.id != order.category_id
        {
            changes.insert(
                "category".into(),
                json!({"from": order.category_path, "to": category.path}),
            );
            row.category_id = Set(category.id);
            row.category_path = Set(category.path);
        }
        if let Some(region) = region
            && region.id != order.region_id
        {
            changes.insert(
                "region".into(),
                json!({"from": order.region_path, "to": region.path}),
            );
            row.region_id = Set(region.id);
            row.region_path = Set(region.path);
        }
        if let Some(address) = patch.service_address.map(|a| a.trim().to_owned())
            && Some(&address) != order.service_address.as_ref()
        {
            changes.insert(
                "service_address".into(),
                masked_change(order.service_address.as_deref(), Some(&address)),
            );
            row.service_address = Set(Some(address));
        }
        if let Some(description) = patch.description.map(|d| d.trim().to_owned())
            && description != order.description
        {
            changes.insert("description".into(), json!({"changed": true}));
            row.description = Set(description);
        }
        if changes.is_empty() {
            return Ok(WorkOrderView::of(order, &scope));
        }
        let now = self.clock.now();
        let mut reapplied = None;
        if changes.contains_key("priority") {
            let priority = patch
                .priority
                .map_or_else(|| order.priority.clone(), |p| p.as_str().to_owned());
            reapplied = Some(self.policy(&txn, &order.type_key, &priority).await?);
            if let Some(Some(policy)) = &reapplied {
                let mut clocks = clocks_of(&order);
                policy.reapply(&mut clocks, order.created_at, now, self.settings.time_zone);
                write_clocks(&mut row, &clocks);
            }
        }
        row.version = Set(order.version + 1);
        row.updated_at = Set(now);
        let updated = row.update(&txn).await?;
        if let Some(policy) = &reapplied {
            self.set_timers(&txn, &updated, policy.as_ref()).await?;
        }
        self.record(
            &txn,
            &updated,
            (&principal.subject, actor_kind(&scope)),
            "updated",
            None,
            changes.into(),
            "shared",
        )
        .await?;
        self.announce(
            &txn,
            Change {
                kind: events::TICKET_UPDATED,
                order: &updated,
                previous: Some(status),
                assignee_kind: None,
                actor: &principal.subject,
                reason: None,
                at: now,
                escalation: None,
            },
        )
        .await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(WorkOrderView::of(updated, &scope))
    }

    /// One step of the status machine, in one transaction with its history
    /// row, the assignees' open-order counts and its events.
    pub async fn act(
        &self,
        principal: &Principal,
        reference: &str,
        step: Step,
        if_match: Option<i64>,
    ) -> ApiResult<WorkOrderView> {
        let scope = Scope::of(principal)?;
        let mut problems = Problems::default();
        if let Some(reason) = &step.reason {
            problems.text("/reason", reason, MAX_REASON);
        }
        if let Some(note) = &step.note {
            problems.prose("/note", note, MAX_TEXT);
        }
        let needs_reason = matches!(
            step.action,
            Action::Decline | Action::Reopen | Action::Cancel
        );
        if needs_reason && step.reason.is_none() {
            problems.add("/reason", "say why");
        }
        if step.action == Action::Hold && step.hold.is_none() {
            problems.add("/reason", "waiting_customer or waiting_parts");
        }
        if step.action == Action::Resolve && step.resolution_code.is_none() {
            problems.add("/resolution_code", "resolving takes a resolution code");
        }
        problems.finish(()).map_err(ApiError::invalid)?;
        if step.force {
            principal.require_any(FORCERS)?;
        }
        let txn = self.db.begin().await?;
        let order = self.find_order(&txn, &scope, reference, true).await?;
        if step.action.staff_only() && !scope.is_staff() {
            return Err(ApiError::forbidden(format!(
                "only the center may {} a work order",
                step.action.as_str()
            )));
        }
        if if_match.is_some_and(|version| version != order.version) {
            return Err(rest::stale_version());
        }
        let actor = (principal.subject.as_str(), actor_kind(&scope));
        let from = status_of(&order);
        // Checked before any room is claimed, so an illegal step says so
        // rather than that the assignee is full.
        if step.action.apply(from, step.hold).is_none() {
            let allowed = crate::views::allowed(&scope, from);
            return Err(illegal(step.action, from, &allowed));
        }
        let updated = match (step.action, step.assignee_id) {
            (Action::Dispatch, None) => {
                self.dispatch_by_rules(&txn, order, actor, Trigger::Requested)
                    .await?
            }
            (Action::Dispatch, Some(id)) => {
                let claimed = self.claim_named(&txn, &order, id, step.force).await?;
                self.apply_step(&txn, &scope, &order, &step, actor, Some(claimed))
                    .await?
            }
            (Action::Decline, _) => {
                let declined = self
                    .apply_step(&txn, &scope, &order, &step, actor, None)
                    .await?;
                self.dispatch_by_rules(&txn, declined, actor, Trigger::Declined)
                    .await?
            }
            (Action::Reopen, _) => {
                let reopened = self
                    .apply_step(&txn, &scope, &order, &step, actor, None)
                    .await?;
                self.dispatch_by_rules(&txn, reopened, actor, Trigger::Reopened)
                    .await?
            }
            _ => {
                self.apply_step(&txn, &scope, &order, &step, actor, None)
                    .await?
            }
        };
        txn.commit().await?;
        self.outbox.wake();
        tracing::info!(
            work_order_id = %updated.id,
            action = step.action.as_str(),
            from = from.as_str(),
            to = updated.status.as_str(),
            "work order changed"
        );
        Ok(WorkOrderView::of(updated, &scope))
    }

    /// One step on a locked order: its status, clocks, timers, the
    /// assignees' counts, its dispatch attempts, history and events. A
    /// dispatch comes with the assignee's room claimed already.
    async fn apply_step<C: ConnectionTrait>(
        &self,
        txn: &C,
        scope: &Scope,
        order: &work_order::Model,
        step: &Step,
        (actor, actor_kind): (&str, &'static str),
        claimed: Option<Claimed>,
    ) -> ApiResult<work_order::Model> {
        let from = status_of(order);
        let allowed = crate::views::allowed(scope, from);
        let Some(to) = step.action.apply(from, step.hold) else {
            return Err(illegal(step.action, from, &allowed));
        };
        let now = self.clock.now();
        let mut row = order.clone().into_active_model();
        let policy = self.policy(txn, &order.type_key, &order.priority).await?;
        if let Some(policy) = &policy {
            let mut clocks = clocks_of(order);
            policy.step(&mut clocks, from, to, now, self.settings.time_zone);
            write_clocks(&mut row, &clocks);
        }
        let mut changes = serde_json::Map::new();
        let mut kinds: Vec<&'static str> = Vec::new();
        let mut assignee_kind: Option<String> = None;
        let previous_assignee = order.assignee_id;
        match step.action {
            Action::Dispatch => {
                let Some(Claimed {
                    assignee: target,
                    rule,
                    timeout,
                    round,
                }) = claimed
                else {
                    return Err(ApiError::internal(anyhow::anyhow!(
                        "a dispatch without a claimed assignee"
                    )));
                };
                if let Some(previous) = previous_assignee {
                    store::count_open(txn, previous, -1, now).await?;
                    self.settle_attempt(txn, order.id, Outcome::Withdrawn, None, now)
                        .await?;
                    self.tell_previous(txn, order, previous, Purpose::Withdrawn)
                        .await?;
                    kinds.push(events::TICKET_WITHDRAWN);
                }
                self.offer(txn, order.id, round, &target, rule, actor, now)
                    .await?;
                self.text_assignee(txn, order, &target, Purpose::NewOrder)
                    .await?;
                changes.insert(
                    "assignee_id".into(),
                    json!({"from": previous_assignee, "to": target.id}),
                );
                if let Some(rule) = rule {
                    changes.insert("rule_id".into(), json!(rule));
                }
                row.assignee_id = Set(Some(target.id));
                row.partner_id = Set(target.partner_id.clone());
                row.dispatch_round = Set(round);
                row.offer_expires_at = Set(Some(now + timeout));
                assignee_kind = Some(target.kind);
                kinds.push(events::TICKET_DISPATCHED);
            }
            Action::Decline => {
                if let Some(previous) = previous_assignee {
                    store::count_open(txn, previous, -1, now).await?;
                }
                let outcome = if step.unanswered {
                    if let Some(previous) = previous_assignee {
                        self.tell_previous(txn, order, previous, Purpose::Withdrawn)
                            .await?;
                    }
                    Outcome::TimedOut
                } else {
                    Outcome::Declined
                };
                self.settle_attempt(txn, order.id, outcome, step.reason.as_deref(), now)
                    .await?;
                changes.insert(
                    "assignee_id".into(),
                    json!({"from": previous_assignee, "to": null}),
                );
                // A shop that declines no longer owns the order.
                row.assignee_id = Set(None);
                row.partner_id = Set(None);
                kinds.push(if step.unanswered {
                    events::TICKET_WITHDRAWN
                } else {
                    events::TICKET_DECLINED
                });
            }
            Action::Accept => {
                self.settle_attempt(txn, order.id, Outcome::Accepted, None, now)
                    .await?;
                kinds.push(events::TICKET_ACCEPTED);
            }
            Action::Start | Action::Hold | Action::Resume => {
                kinds.push(events::TICKET_STATUS_CHANGED)
            }
            Action::Resolve => {
                let code = step.resolution_code.clone().unwrap_or_default();
                let known = resolution_code::Entity::find_by_id(code.clone())
                    .one(txn)
                    .await?
                    .filter(|c| c.active);
                let applies = known.as_ref().is_some_and(|c| {
                    let types: Vec<String> =
                        serde_json::from_value(c.types.clone()).unwrap_or_default();
                    types.is_empty() || types.contains(&order.type_key)
                });
                if !applies {
                    return Err(ApiError::invalid_field(
                        "/resolution_code",
                        format!(
                            "not an active resolution code for {} orders",
                            order.type_key
                        ),
                    ));
                }
                if let Some(assignee) = previous_assignee {
                    store::count_open(txn, assignee, -1, now).await?;
                }
                changes.insert("resolution_code".into(), json!({"from": null, "to": code}));
                row.resolution_code = Set(Some(code));
                row.resolution_note = Set(step.note.clone().map(|n| n.trim().to_owned()));
                row.resolved_at = Set(Some(now));
                kinds.push(events::TICKET_RESOLVED);
            }
            Action::Close => {
                row.closed_at = Set(Some(now));
                kinds.push(events::TICKET_CLOSED);
            }
            Action::Reopen => {
                if let Some(closed_at) = order.closed_at
                    && closed_at + self.settings.reopen_window < now
                {
                    return Err(ApiError::conflict(
                        "reopen_window_passed",
                        "the work order was closed too long ago to reopen; open a new one",
                    ));
                }
                changes.insert(
                    "resolution_code".into(),
                    json!({"from": order.resolution_code, "to": null}),
                );
                row.resolution_code = Set(None);
                row.resolution_note = Set(None);
                row.resolved_at = Set(None);
                row.closed_at = Set(None);
                row.assignee_id = Set(None);
                row.partner_id = Set(None);
                kinds.push(events::TICKET_REOPENED);
            }
            Action::Cancel => {
                if let Some(assignee) = previous_assignee {
                    store::count_open(txn, assignee, -1, now).await?;
                }
                self.settle_attempt(txn, order.id, Outcome::Cancelled, None, now)
                    .await?;
                if let Some(assignee) = previous_assignee {
                    self.tell_previous(txn, order, assignee, Purpose::Cancelled)
                        .await?;
                }
                kinds.push(events::TICKET_CANCELLED);
            }
        }
        if to != Status::Dispatched {
            row.offer_expires_at = Set(None);
        }
        row.redispatch_at = Set(None);
        row.status = Set(to.as_str().to_owned());
        row.version = Set(order.version + 1);
        row.updated_at = Set(now);
        let updated = row.update(txn).await?;
        self.set_timers(txn, &updated, policy.as_ref()).await?;
        if let Some(reason) = &step.reason {
            changes.insert("reason".into(), json!(reason));
        }
        self.record(
            txn,
            &updated,
            (actor, actor_kind),
            if step.unanswered {
                "offer_timed_out"
            } else {
                step.action.as_str()
            },
            Some(from),
            changes.into(),
            "shared",
        )
        .await?;
        for kind in kinds {
            // A withdrawal is announced with the order as its old assignee had it.
            let announced = if kind == events::TICKET_WITHDRAWN {
                order
            } else {
                &updated
            };
            self.announce(
                txn,
                Change {
                    kind,
                    order: announced,
                    previous: Some(from),
                    assignee_kind: assignee_kind
                        .as_deref()
                        .filter(|_| kind != events::TICKET_WITHDRAWN),
                    actor,
                    reason: step.reason.as_deref(),
                    at: now,
                    escalation: None,
                },
            )
            .await?;
        }
        Ok(updated)
    }

    pub async fn add_note(
        &self,
        principal: &Principal,
        reference: &str,
        input: NewNote,
    ) -> ApiResult<NoteView> {
        let scope = Scope::of(principal)?;
        if input.internal && !scope.is_staff() {
            return Err(ApiError::forbidden(
                "internal comments are the center's own",
            ));
        }
        let mut problems = Problems::default();
        if input.body.trim().is_empty() {
            problems.add("/body", "must not be empty");
        }
        problems.prose("/body", &input.body, MAX_TEXT);
        problems.finish(()).map_err(ApiError::invalid)?;
        let txn = self.db.begin().await?;
        let order = self.find_order(&txn, &scope, reference, true).await?;
        let now = self.clock.now();
        let row = note::Entity::insert(note::ActiveModel {
            id: Set(Uuid::now_v7()),
            work_order_id: Set(order.id),
            author: Set(principal.subject.clone()),
            internal: Set(input.internal),
            body: Set(input.body.trim().to_owned()),
            created_at: Set(now),
        })
        .exec_with_returning(&txn)
        .await?;
        let (action, visibility) = if input.internal {
            ("commented", "internal")
        } else {
            ("noted", "shared")
        };
        self.record(
            &txn,
            &order,
            (&principal.subject, actor_kind(&scope)),
            action,
            None,
            json!({"note_id": row.id}),
            visibility,
        )
        .await?;
        txn.commit().await?;
        Ok(row.into())
    }

    pub async fn notes(&self, principal: &Principal, reference: &str) -> ApiResult<Vec<NoteView>> {
        let scope = Scope::of(principal)?;
        let order = self.find_order(&self.db, &scope, reference, false).await?;
        let mut select = note::Entity::find().filter(note::Column::WorkOrderId.eq(order.id));
        if !scope.is_staff() {
            select = select.filter(note::Column::Internal.eq(false));
        }
        let rows = select
            .order_by_asc(note::Column::CreatedAt)
            .order_by_asc(note::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn history(
        &self,
        principal: &Principal,
        reference: &str,
    ) -> ApiResult<Vec<HistoryView>> {
        let scope = Scope::of(principal)?;
        let order = self.find_order(&self.db, &scope, reference, false).await?;
        let mut select = history::Entity::find().filter(history::Column::WorkOrderId.eq(order.id));
        if !scope.is_staff() {
            select = select.filter(history::Column::Visibility.eq("shared"));
        }
        let rows = select
            .order_by_asc(history::Column::Seq)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| HistoryView::of(row, &scope))
            .collect())
    }

    #[expect(clippy::too_many_arguments, reason = "one history row's columns")]
    async fn record<C: ConnectionTrait>(
        &self,
        txn: &C,
        order: &work_order::Model,
        (actor, kind): (&str, &str),
        action: &str,
        from: Option<Status>,
        changes: serde_json::Value,
        visibility: &str,
    ) -> Result<(), DbErr> {
        let seq = store::next_history_seq(txn, order.id).await?;
        history::Entity::insert(history::ActiveModel {
            work_order_id: Set(order.id),
            seq: Set(seq),
            at: Set(self.clock.now()),
            actor: Set(actor.to_owned()),
            actor_kind: Set(kind.to_owned()),
            action: Set(action.to_owned()),
            from_status: Set(from.map(|s| s.as_str().to_owned())),
            to_status: Set(Some(order.status.clone())),
            changes: Set(changes),
            visibility: Set(visibility.to_owned()),
        })
        .exec_without_returning(txn)
        .await?;
        Ok(())
    }

    async fn announce<C: ConnectionTrait>(&self, txn: &C, change: Change<'_>) -> Result<(), DbErr> {
        let mut batch = vec![events::changed(&self.outbox, &change)];
        batch.extend(events::timeline(&self.outbox, &change));
        self.outbox.enqueue_many(txn, batch).await?;
        self.queue_webhooks(txn, &change).await
    }

    // ---- SLA -----------------------------------------------------------

    /// The policy of (type, priority), else of the type's normal priority;
    /// none: the order has no deadlines.
    async fn policy<C: ConnectionTrait>(
        &self,
        conn: &C,
        type_key: &str,
        priority: &str,
    ) -> ApiResult<Option<Policy>> {
        let mut found = sla_policy::Entity::find_by_id((type_key.to_owned(), priority.to_owned()))
            .one(conn)
            .await?;
        if found.is_none() && priority != Priority::Normal.as_str() {
            found = sla_policy::Entity::find_by_id((
                type_key.to_owned(),
                Priority::Normal.as_str().to_owned(),
            ))
            .one(conn)
            .await?;
        }
        found
            .map(|row| policy_of(&row))
            .transpose()
            .map_err(ApiError::internal)
    }

    pub async fn list_policies(&self, principal: &Principal) -> ApiResult<Vec<SlaPolicyView>> {
        principal.require_any(STAFF)?;
        let rows = sla_policy::Entity::find()
            .order_by_asc(sla_policy::Column::TypeKey)
            .order_by_asc(sla_policy::Column::Priority)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Sets the policy of (type, priority); orders opened from now on follow
    /// it, and open ones when their priority changes.
    pub async fn put_policy(
        &self,
        principal: &Principal,
        type_key: &str,
        priority: &str,
        input: SlaPolicyInput,
    ) -> ApiResult<SlaPolicyView> {
        principal.require_any(CONFIGURERS)?;
        let mut problems = Problems::default();
        if self.active_type(type_key).await?.is_none() {
            return Err(ApiError::not_found(
                "type_not_found",
                "no such active work-order type",
            ));
        }
        let Some(priority) = Priority::parse(priority) else {
            return Err(ApiError::not_found(
                "priority_not_found",
                "priorities are low, normal, major and critical",
            ));
        };
        let range =
            std::time::Duration::from_secs(60)..=std::time::Duration::from_secs(90 * 86_400);
        if !range.contains(&*input.first_response) {
            problems.add("/first_response", "must be between 1m and 90d");
        }
        if !range.contains(&*input.resolution) {
            problems.add("/resolution", "must be between 1m and 90d");
        }
        for (index, status) in input.pause_on.iter().enumerate() {
            if !matches!(status, Status::WaitingCustomer | Status::WaitingParts) {
                problems.add(
                    format!("/pause_on/{index}"),
                    "only waiting_customer and waiting_parts may pause",
                );
            }
        }
        if let Some(hours) = &input.business_hours {
            for (pointer, message) in hours.problems() {
                problems.add(format!("/business_hours{pointer}"), message);
            }
            if hours.weekly.is_empty() {
                problems.add("/business_hours/weekly", "the clocks would never run");
            }
        }
        problems.finish(()).map_err(ApiError::invalid)?;
        let secs = |d: &std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let now = self.clock.now();
        let existing =
            sla_policy::Entity::find_by_id((type_key.to_owned(), priority.as_str().to_owned()))
                .one(&self.db)
                .await?;
        let row = sla_policy::ActiveModel {
            type_key: Set(type_key.to_owned()),
            priority: Set(priority.as_str().to_owned()),
            first_response_secs: Set(secs(&input.first_response)),
            resolution_secs: Set(secs(&input.resolution)),
            business_hours: Set(input
                .business_hours
                .as_ref()
                .map(serde_json::to_value)
                .transpose()
                .map_err(ApiError::internal)?),
            pause_on: Set(json!(input.pause_on)),
            redispatch_on_breach: Set(input.redispatch_on_breach),
            version: Set(existing.as_ref().map_or(1, |row| row.version + 1)),
            updated_at: Set(now),
        };
        let saved = if existing.is_some() {
            row.update(&self.db).await?
        } else {
            sla_policy::Entity::insert(row)
                .exec_with_returning(&self.db)
                .await?
        };
        Ok(saved.into())
    }

    /// The newest order of `customer` for the same kind of fault (the first
    /// level of the category) resolved within the repeat window.
    async fn repeated(
        &self,
        customer: &str,
        category_path: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<Option<Uuid>> {
        let since = now - self.settings.repeat_window;
        Ok(store::latest_resolved(&self.db, customer, repeat_scope(category_path), since).await?)
    }

    /// Replaces the order's timers with those it still needs: its SLA
    /// deadlines, and its closing once resolved.
    async fn set_timers<C: ConnectionTrait>(
        &self,
        txn: &C,
        order: &work_order::Model,
        policy: Option<&Policy>,
    ) -> Result<(), DbErr> {
        let keys: Vec<String> = OrderTimer::all()
            .map(|timer| timer_key(order.id, timer))
            .collect();
        timers::cancel(txn, &keys).await?;
        timers::schedule(txn, &self.timers_of(order, policy)).await
    }

    /// The timers `order` needs in its state.
    fn timers_of(&self, order: &work_order::Model, policy: Option<&Policy>) -> Vec<Timer> {
        let mut due: Vec<Timer> = policy
            .map(|policy| {
                policy.deadlines(&clocks_of(order), order.created_at, self.settings.time_zone)
            })
            .unwrap_or_default()
            .into_iter()
            .map(|(deadline, at)| OrderTimer::Sla(deadline).at(order.id, at))
            .collect();
        if status_of(order) == Status::Resolved
            && let Some(resolved_at) = order.resolved_at
        {
            due.push(
                OrderTimer::AutoClose.at(order.id, resolved_at + self.settings.auto_close_after),
            );
        }
        if status_of(order) == Status::Dispatched
            && let Some(expires_at) = order.offer_expires_at
        {
            due.push(OrderTimer::Offer.at(order.id, expires_at));
        }
        if dispatch::waits_for_dispatch(order)
            && let Some(at) = order.redispatch_at
        {
            due.push(OrderTimer::Redispatch.at(order.id, at));
        }
        due
    }

    /// Deadline timers due by the service's clock.
    pub async fn due_timers(&self, limit: u64) -> Result<Vec<Timer>, DbErr> {
        timers::due(&self.db, self.clock.now(), limit).await
    }

    /// Fires one due timer in a transaction fenced by `grant`: a warning
    /// raises the order's escalation level, a breach also records the
    /// deadline as missed; each once, whichever replica holds the lease.
    pub async fn fire(
        &self,
        grant: &Grant,
        ttl: std::time::Duration,
        timer: &Timer,
    ) -> ApiResult<Fired> {
        let txn = self.db.begin().await?;
        match lease::fence(&txn, grant, ttl).await {
            Ok(()) => {}
            Err(FenceError::Lost(_)) => return Ok(Fired::Lost),
            Err(FenceError::Db(error)) => return Err(error.into()),
        }
        let Some((id, purpose)) = parse_timer_key(&timer.key) else {
            tracing::warn!(key = %timer.key, "a timer ticketing doesn't know; dropped");
            timers::take(&txn, timer).await?;
            txn.commit().await?;
            return Ok(Fired::Skipped);
        };
        // The order first, then its timer: the lock order of every step.
        let order = store::for_update(&txn, work_order::Entity::find_by_id(id))
            .one(&txn)
            .await?;
        let taken = timers::take(&txn, timer).await?;
        let Some(order) = order.filter(|_| taken) else {
            txn.commit().await?;
            return Ok(Fired::Skipped);
        };
        let now = self.clock.now();
        let done = match purpose {
            OrderTimer::Sla(deadline) if deadline.pending(&clocks_of(&order)) => {
                let escalated = self.escalate(&txn, &order, deadline, now).await?;
                if deadline == Deadline::Response && status_of(&escalated) == Status::Dispatched {
                    let policy = self.policy(&txn, &order.type_key, &order.priority).await?;
                    if policy.is_some_and(|p| p.redispatch_on_breach) {
                        self.withdraw_and_redispatch(
                            &txn,
                            &escalated,
                            "the response deadline passed",
                        )
                        .await?;
                    }
                }
                true
            }
            OrderTimer::AutoClose if status_of(&order) == Status::Resolved => {
                self.auto_close(&txn, &order, now).await?;
                true
            }
            OrderTimer::Offer
                if status_of(&order) == Status::Dispatched
                    && order.offer_expires_at.is_some_and(|at| at <= now) =>
            {
                self.withdraw_and_redispatch(&txn, &order, "not accepted in time")
                    .await?;
                true
            }
            OrderTimer::Redispatch if dispatch::waits_for_dispatch(&order) => {
                self.redispatch(&txn, order).await?;
                true
            }
            OrderTimer::Sla(_)
            | OrderTimer::AutoClose
            | OrderTimer::Offer
            | OrderTimer::Redispatch => false,
        };
        txn.commit().await?;
        if !done {
            return Ok(Fired::Skipped);
        }
        self.outbox.wake();
        Ok(Fired::Done)
    }

    /// A deadline's warning or breach on a locked order.
    async fn escalate<C: ConnectionTrait>(
        &self,
        txn: &C,
        order: &work_order::Model,
        deadline: Deadline,
        now: DateTime<Utc>,
    ) -> Result<work_order::Model, DbErr> {
        let level = order.escalation_level + 1;
        let mut row = order.clone().into_active_model();
        row.escalation_level = Set(level);
        match deadline {
            Deadline::ResponseWarning => row.response_warned = Set(true),
            Deadline::Response => row.response_met = Set(Some(false)),
            Deadline::ResolutionWarning => row.resolution_warned = Set(true),
            Deadline::Resolution => row.resolution_met = Set(Some(false)),
        }
        row.version = Set(order.version + 1);
        row.updated_at = Set(now);
        let updated = row.update(txn).await?;
        let (action, kind) = if deadline.is_breach() {
            ("sla_breached", events::TICKET_SLA_BREACHED)
        } else {
            ("escalated", events::TICKET_ESCALATED)
        };
        self.record(
            txn,
            &updated,
            (SYSTEM_ACTOR, "system"),
            action,
            None,
            json!({"clock": deadline.clock(), "level": level}),
            "internal",
        )
        .await?;
        self.announce(
            txn,
            Change {
                kind,
                order: &updated,
                previous: Some(status_of(order)),
                assignee_kind: None,
                actor: SYSTEM_ACTOR,
                reason: None,
                at: now,
                escalation: Some((deadline.clock(), level)),
            },
        )
        .await?;
        tracing::info!(work_order_id = %order.id, clock = deadline.clock(), level, breach = deadline.is_breach(), "work order escalated");
        Ok(updated)
    }

    /// Closes a locked order that stayed resolved for `auto_close_after`.
    async fn auto_close<C: ConnectionTrait>(
        &self,
        txn: &C,
        order: &work_order::Model,
        now: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let mut row = order.clone().into_active_model();
        row.status = Set(Status::Closed.as_str().to_owned());
        row.closed_at = Set(Some(now));
        row.version = Set(order.version + 1);
        row.updated_at = Set(now);
        let updated = row.update(txn).await?;
        self.record(
            txn,
            &updated,
            (SYSTEM_ACTOR, "system"),
            Action::Close.as_str(),
            Some(Status::Resolved),
            json!({"reason": AUTO_CLOSE_REASON}),
            "shared",
        )
        .await?;
        self.announce(
            txn,
            Change {
                kind: events::TICKET_CLOSED,
                order: &updated,
                previous: Some(Status::Resolved),
                assignee_kind: None,
                actor: SYSTEM_ACTOR,
                reason: Some(AUTO_CLOSE_REASON),
                at: now,
                escalation: None,
            },
        )
        .await?;
        tracing::info!(work_order_id = %order.id, "resolved work order closed automatically");
        Ok(())
    }

    // ---- identity's changes --------------------------------------------

    /// The customer was erased: their snapshots and service addresses go
    /// (the region stays, for the statistics).
    pub async fn customer_erased(&self, event_id: Uuid, customer: &str) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        if inbox::claim(&txn, "ticketing.identity", event_id).await? {
            work_order::Entity::update_many()
                .col_expr(
                    work_order::Column::CustomerName,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(
                    work_order::Column::CustomerPhone,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(
                    work_order::Column::CustomerAddress,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(
                    work_order::Column::ServiceAddress,
                    Expr::value(Option::<String>::None),
                )
                .filter(work_order::Column::CustomerId.eq(customer))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        self.forget_customer(customer).await;
        Ok(())
    }

    /// Two customers became one: the merged one's orders are the survivor's.
    pub async fn customer_merged(
        &self,
        event_id: Uuid,
        merged: &str,
        survivor: &str,
    ) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        if inbox::claim(&txn, "ticketing.identity", event_id).await? {
            work_order::Entity::update_many()
                .col_expr(work_order::Column::CustomerId, Expr::value(survivor))
                .filter(work_order::Column::CustomerId.eq(merged))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        self.forget_customer(merged).await;
        Ok(())
    }
}
