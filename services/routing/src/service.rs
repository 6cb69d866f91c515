//! Routing's use cases. REST and gRPC call only these: they run commands on
//! the router (wherever it is), add the caller's screen pop to arriving calls,
//! read history from the database and open streams.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use hotline_kit::{
    ApiError, ApiResult,
    auth::{Principal, Role},
    mask,
    rest::{Page, decode_cursor, page_limit},
};
use hotline_proto::{RestName, clients::IdentityApi, identity::v1::LookupByPhoneResponse};
use sea_orm::{DatabaseConnection, EntityTrait};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    domain::{
        command::{Command, NewTask, Outcome},
        model::{Channel, Task, TaskKind},
    },
    leader::Notification,
    peers::{Peers, Topic},
    store::{self, TaskFilter},
    views::{AgentView, TaskView},
};

/// Who may read tasks and figures.
const STAFF: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin, Role::Service];
/// Who feeds tasks in.
const FEEDERS: &[Role] = &[Role::Service, Role::Supervisor, Role::Admin];

pub struct RoutingService {
    peers: Arc<Peers>,
    identity: Arc<dyn IdentityApi>,
    db: DatabaseConnection,
    screen_pop_timeout: Duration,
    keep_alive: Duration,
    streams_end: CancellationToken,
}

/// A task as answered to a client: whether this call made it.
pub struct Created {
    pub task: TaskView,
    pub created: bool,
}

impl RoutingService {
    pub fn new(
        peers: Arc<Peers>,
        identity: Arc<dyn IdentityApi>,
        db: DatabaseConnection,
        screen_pop_timeout: Duration,
        keep_alive: Duration,
        streams_end: CancellationToken,
    ) -> Self {
        Self {
            peers,
            identity,
            db,
            screen_pop_timeout,
            keep_alive,
            streams_end,
        }
    }

    pub fn keep_alive(&self) -> Duration {
        self.keep_alive
    }

    pub fn streams_end(&self) -> &CancellationToken {
        &self.streams_end
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn peers(&self) -> &Arc<Peers> {
        &self.peers
    }

    #[tracing::instrument(skip_all, fields(command = command_name(&command)), err(level = "debug", Debug))]
    pub async fn execute(&self, principal: &Principal, command: Command) -> ApiResult<Outcome> {
        self.peers.execute(principal, command).await
    }

    pub async fn task_outcome(
        &self,
        principal: &Principal,
        command: Command,
    ) -> ApiResult<Created> {
        let (task, created) = self.execute(principal, command).await?.task()?;
        Ok(Created { task, created })
    }

    pub async fn agent_outcome(
        &self,
        principal: &Principal,
        command: Command,
    ) -> ApiResult<AgentView> {
        self.execute(principal, command).await?.agent()
    }

    /// Adds a task: the caller's screen pop first (bounded by
    /// `routing.screen_pop_timeout`), then the router places it. An external
    /// id the router has seen today (or during the resume window) answers
    /// with that task; switches reuse call ids over longer spans.
    pub async fn create_task(
        &self,
        principal: &Principal,
        mut task: NewTask,
    ) -> ApiResult<Created> {
        principal.require_any(FEEDERS)?;
        if task.kind == TaskKind::Inbound
            && task.channel == Channel::Voice
            && let Some(number) = task.calling_number.clone()
        {
            match tokio::time::timeout(
                self.screen_pop_timeout,
                self.identity.lookup_by_phone(principal, &number),
            )
            .await
            {
                Ok(Ok(found)) => {
                    let (pop, customer_id) = screen_pop(&found);
                    if !found.phone.is_empty() {
                        task.calling_number = Some(found.phone.clone());
                    }
                    task.customer = Some(pop);
                    task.customer_id = customer_id;
                }
                Ok(Err(error)) => {
                    tracing::warn!(error = %error, "screen pop failed; the call goes on without it");
                }
                Err(_) => tracing::warn!("screen pop took too long; the call goes on without it"),
            }
        }
        match self
            .task_outcome(principal, Command::CreateTask { task })
            .await
        {
            Err(error) if error.kind == "task_exists" => {
                let id = error
                    .extensions
                    .get("task_id")
                    .and_then(Value::as_str)
                    .and_then(|id| Uuid::parse_str(id).ok());
                match id {
                    Some(id) => match store::find_task(&self.db, id).await? {
                        Some(task) => Ok(Created {
                            task: self.history_view(&task).await?,
                            created: false,
                        }),
                        None => Err(error),
                    },
                    None => Err(error),
                }
            }
            other => other,
        }
    }

    /// A task, active (from the router, with position and estimated wait) or
    /// from history.
    pub async fn task(&self, principal: &Principal, id: Uuid) -> ApiResult<TaskView> {
        principal.require_any(STAFF)?;
        match self.execute(principal, Command::GetTask { id }).await {
            Ok(outcome) => Ok(outcome.task()?.0),
            Err(error) if error.kind == "task_not_found" => {
                match store::find_task(&self.db, id).await? {
                    Some(task) => self.history_view(&task).await,
                    None => Err(ApiError::not_found(
                        "task_not_found",
                        format!("no task {id}"),
                    )),
                }
            }
            Err(error) => Err(error),
        }
    }

    /// A call event from the switch; repeated for a call already over, it
    /// answers with the call as it ended.
    pub async fn call_event(
        &self,
        principal: &Principal,
        call_id: &str,
        command: Command,
    ) -> ApiResult<TaskView> {
        principal.require_any(FEEDERS)?;
        match self.task_outcome(principal, command).await {
            Ok(created) => Ok(created.task),
            Err(error) if error.kind == "call_not_found" => {
                match store::find_by_external(&self.db, call_id).await? {
                    Some(task) => self.history_view(&task).await,
                    None => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    }

    /// Tasks from the database, newest first.
    pub async fn list_tasks(
        &self,
        principal: &Principal,
        filter: TaskFilter,
        cursor: Option<&str>,
        limit: Option<u64>,
    ) -> ApiResult<Page<TaskView>> {
        principal.require_any(STAFF)?;
        let limit = page_limit(limit);
        let after = cursor
            .map(decode_cursor::<(DateTime<Utc>, Uuid)>)
            .transpose()?;
        let tasks = store::list_tasks(&self.db, &filter, after, limit + 1).await?;
        let names = self.queue_names().await?;
        Ok(
            Page::cut(tasks, limit, |task| (task.created_at, task.id)).map(|task| {
                TaskView::of(
                    &task,
                    names.get(&task.queue_id).cloned().unwrap_or_default(),
                    None,
                    None,
                )
            }),
        )
    }

    async fn queue_names(&self) -> ApiResult<HashMap<Uuid, String>> {
        Ok(store::queue::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|queue| (queue.id, queue.name))
            .collect())
    }

    async fn history_view(&self, task: &Task) -> ApiResult<TaskView> {
        let name = store::queue::Entity::find_by_id(task.queue_id)
            .one(&self.db)
            .await?
            .map(|queue| queue.name)
            .unwrap_or_default();
        Ok(TaskView::of(task, name, None, None))
    }

    /// The changes of `topic` for `principal`, until the client leaves or the
    /// process shuts down.
    pub fn stream(
        &self,
        principal: Principal,
        topic: Topic,
    ) -> mpsc::Receiver<ApiResult<Notification>> {
        self.peers
            .stream(principal, topic, self.streams_end.child_token())
    }
}

fn command_name(command: &Command) -> String {
    serde_json::to_value(command)
        .ok()
        .and_then(|value| {
            value
                .get("command")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// identity's candidates as the JSON a desktop shows, and the customer id
/// when there is exactly one.
fn screen_pop(found: &LookupByPhoneResponse) -> (Value, Option<String>) {
    let candidates: Vec<Value> = found
        .candidates
        .iter()
        .map(|candidate| {
            let customer = candidate.customer.as_ref();
            json!({
                "customer_id": customer.map(|c| c.id.clone()),
                "name": customer.map(|c| c.name.clone()),
                "vip_level": customer.map(|c| c.vip_level),
                "tags": customer.map(|c| c.tags.clone()),
                // Identity reveals the number to an admin's lookup; the pop
                // travels to agents, so it is masked whatever the caller.
                "id_number": customer.map(|c| mask::keep_ends(&c.id_number, 4, 4)),
                "addresses": customer.map(|c| c.addresses.iter().map(|a| json!({
                    "province": a.province, "city": a.city, "district": a.district,
                    "street": a.street, "building": a.building, "detail": a.detail,
                })).collect::<Vec<_>>()),
                "assets": customer.map(|c| c.assets.iter().map(|a| json!({
                    "kind": a.kind, "serial": a.serial, "model": a.model,
                })).collect::<Vec<_>>()),
                "matched_on": candidate.matched_on().rest_name(),
                "recent_history": candidate.recent_history.iter().map(|entry| json!({
                    "kind": entry.kind, "reference": entry.reference, "summary": entry.summary,
                    "occurred_at": entry.occurred_at.as_ref().map(|t| t.seconds),
                })).collect::<Vec<_>>(),
                "billing": candidate.billing.as_ref().map(|b| json!({
                    "status": b.status().rest_name(), "account_number": b.account_number,
                    "account_status": b.account_status, "balance_cents": b.balance_cents,
                    "currency": b.currency, "subscriptions": b.subscriptions,
                })),
            })
        })
        .collect();
    let customer_id = match found.candidates.as_slice() {
        [only] => only.customer.as_ref().map(|c| c.id.clone()),
        _ => None,
    };
    (
        json!({"phone": found.phone, "candidates": candidates}),
        customer_id,
    )
}
