//! The router: the state of the center (agents, queues, waiting and offered
//! tasks, live statistics) and every decision about it, with no I/O.
//!
//! One replica at a time holds the router lease and runs this state machine
//! (docs/adr/0008-routing-across-replicas.md). Commands and due timers change
//! it; each change is recorded as [`Changes`] — rows to write, timers to set,
//! events to publish — which the leader commits in one fenced transaction per
//! batch before anyone hears of them. A replica taking over rebuilds the
//! router from the database with [`Router::restore`].
//!
//! Matching keeps one invariant: after every step, no free agent could take a
//! waiting task. So a task arriving takes the best free agent by its queue's
//! strategy, and an agent freeing up takes the best-placed waiting task among
//! its queues.

mod agents;
mod config;
mod matching;
mod stats;
mod tasks;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    time::Duration,
};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use hotline_kit::{
    ApiError, ApiResult,
    timers::{Timer, TimerWheel},
};
use rand::{SeedableRng, rngs::SmallRng};
use uuid::Uuid;

use super::{
    command::{Actor, Command, Outcome},
    expr::{self, Expr},
    model::{Activity, Agent, AgentId, EntryRule, PerChannel, Queue, QueueId, Task, TaskId},
};
use crate::views::{AgentView, TaskView};

pub use stats::Recent;

/// How the router behaves, from `[routing]` in the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long an offer rings when its queue sets nothing.
    pub offer_timeout: Duration,
    /// The activity an agent is put in when an offer to them goes unanswered.
    pub no_answer_activity: String,
    /// Waiting this long is worth one priority level.
    pub priority_aging: Duration,
    /// A caller who hung up and calls again within this keeps their place.
    pub resume_window: Duration,
    /// When to call again after a callback found nobody, per failed attempt.
    pub callback_retry: Vec<Duration>,
    /// The center's day for "today" and the default for business hours.
    pub time_zone: Tz,
    /// Recent tasks per queue that estimated waits average over.
    pub handle_time_samples: usize,
}

/// What the database holds, for a replica taking the router over.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub activities: Vec<Activity>,
    pub agents: Vec<Agent>,
    pub queues: Vec<Queue>,
    pub rules: Vec<EntryRule>,
    /// Tasks not final yet.
    pub active: Vec<Task>,
    /// Final tasks of today and of the resume window: statistics, counters,
    /// handle times and callers who may resume.
    pub recent: Vec<Recent>,
    pub timers: Vec<Timer>,
}

/// One reservation's row: offered, then accepted, rejected, timed out or withdrawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservationRecord {
    pub id: Uuid,
    pub task_id: TaskId,
    pub agent_id: AgentId,
    pub status: &'static str,
    pub offered_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub responded_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

/// A customer-timeline entry the change makes (`routing.activity.recorded`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineNote {
    pub customer_id: Option<String>,
    pub phone: Option<String>,
    pub reference: String,
    pub summary: String,
    pub occurred_at: DateTime<Utc>,
}

/// Something that happened, for the outbox and for whoever watches.
#[derive(Clone, Debug, PartialEq)]
pub struct Happening {
    /// The event type: `routing.task.reserved`, `routing.agent.state_changed`...
    pub kind: &'static str,
    pub task: Option<TaskView>,
    pub agent: Option<AgentView>,
    /// The agent a task event concerns (offered to, withdrawn from, assigned).
    pub concerns: Option<AgentId>,
    pub timeline: Option<TimelineNote>,
    /// The offer a rejection, timeout or withdrawal ended (the task no longer holds it).
    pub ended: Option<crate::domain::model::Reservation>,
}

/// What one batch of commands and timers changed.
#[derive(Debug, Default)]
pub struct Changes {
    pub tasks: Vec<Task>,
    pub agents: Vec<Agent>,
    pub deleted_agents: Vec<AgentId>,
    pub queues: Vec<Queue>,
    pub deleted_queues: Vec<QueueId>,
    pub activities: Vec<Activity>,
    pub deleted_activities: Vec<String>,
    pub rules: Option<Vec<EntryRule>>,
    pub reservations: Vec<ReservationRecord>,
    pub timers_set: Vec<Timer>,
    pub timers_cancel: Vec<String>,
    pub happenings: Vec<Happening>,
    /// The service-level threshold of each queue a task happening is in.
    pub service_levels: HashMap<QueueId, u32>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
            && self.agents.is_empty()
            && self.deleted_agents.is_empty()
            && self.queues.is_empty()
            && self.deleted_queues.is_empty()
            && self.activities.is_empty()
            && self.deleted_activities.is_empty()
            && self.rules.is_none()
            && self.reservations.is_empty()
            && self.timers_set.is_empty()
            && self.timers_cancel.is_empty()
            && self.happenings.is_empty()
    }

    /// Whether the center's set-up changed (queues, activities, entry rules)
    /// or anything was deleted: the rare batches, beside what every offer and
    /// assignment changes (tasks, agents' states, reservations, timers).
    pub fn changes_set_up(&self) -> bool {
        !(self.deleted_agents.is_empty()
            && self.queues.is_empty()
            && self.deleted_queues.is_empty()
            && self.activities.is_empty()
            && self.deleted_activities.is_empty()
            && self.rules.is_none())
    }
}

/// Per channel: what an agent holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Load {
    reserved: u32,
    assigned: u32,
    wrapping: u32,
}

impl Load {
    fn total(self) -> u32 {
        self.reserved + self.assigned + self.wrapping
    }
}

/// Today's figures of one agent, per channel.
#[derive(Clone, Debug, Default)]
struct AgentDay {
    day: Option<NaiveDate>,
    tasks: PerChannel<u32>,
    talk_ms: PerChannel<i64>,
}

struct AgentRuntime {
    agent: Agent,
    /// Whether the agent's activity takes offers (kept in step with it).
    available: bool,
    /// The agent's capacity per channel (from `agent.spec`).
    capacity: PerChannel<u32>,
    load: PerChannel<Load>,
    tasks: BTreeSet<TaskId>,
    /// Since when the agent has been free on each channel.
    idle_since: PerChannel<DateTime<Utc>>,
    today: AgentDay,
    /// Queues that may offer this agent work, with the first step they may.
    memberships: BTreeMap<QueueId, u32>,
    state: String,
    state_since: DateTime<Utc>,
}

#[derive(Clone, Debug, Default)]
struct QueueDay {
    day: Option<NaiveDate>,
    offered: u32,
    answered: u32,
    answered_within: u32,
    abandoned: u32,
    abandoned_within: u32,
    overflowed: u32,
    answered_wait_ms: i64,
}

struct QueueRuntime {
    queue: Queue,
    /// Step 0's target, then each relaxation step's.
    targets: Vec<Expr>,
    ranking_skill: Option<String>,
    /// Agents that may take its tasks, with the first step they may.
    members: BTreeMap<AgentId, u32>,
    /// Tasks that can be offered now, best placed first.
    waiting: BTreeSet<(i64, TaskId)>,
    /// Every task not final in the queue.
    active: BTreeSet<TaskId>,
    /// Tasks waiting for an agent (pending, scheduled or being offered).
    queued: BTreeSet<TaskId>,
    /// Recent times agents spent per task, offer to end of wrap-up, in ms.
    handle_ms: std::collections::VecDeque<i64>,
    /// The offer counter's value at each agent's last offer from this queue.
    last_offered: HashMap<AgentId, u64>,
    today: QueueDay,
}

/// Where a pending task sits in the waiting sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Queue(QueueId, i64),
    Agent(AgentId, i64),
}

struct Resumable {
    task_id: TaskId,
    queue_id: QueueId,
    rank_at: DateTime<Utc>,
    until: DateTime<Utc>,
}

#[derive(Default)]
struct Dirty {
    tasks: BTreeSet<TaskId>,
    agents: BTreeSet<AgentId>,
    deleted_agents: Vec<AgentId>,
    queues: BTreeSet<QueueId>,
    deleted_queues: Vec<QueueId>,
    activities: BTreeSet<String>,
    deleted_activities: Vec<String>,
    rules: bool,
    timers: BTreeSet<TaskId>,
}

pub struct Router {
    settings: Settings,
    activities: BTreeMap<String, Activity>,
    agents: HashMap<AgentId, AgentRuntime>,
    queues: HashMap<QueueId, QueueRuntime>,
    queue_names: HashMap<String, QueueId>,
    rules: Vec<(EntryRule, Expr)>,
    tasks: HashMap<TaskId, Task>,
    /// External ids (call ids) of active tasks and of those seen in the last
    /// day, with when they were last seen: a repeated one is answered with its task.
    by_external: HashMap<String, (TaskId, DateTime<Utc>)>,
    /// When `by_external` was last pruned.
    pruned_at: Option<DateTime<Utc>>,
    reservations: HashMap<Uuid, TaskId>,
    /// Reservations that ended while this router ran: how, and whose they were.
    past_reservations: HashMap<Uuid, (AgentId, &'static str)>,
    slots: HashMap<TaskId, Slot>,
    targeted: HashMap<AgentId, BTreeSet<(i64, TaskId)>>,
    resumable: HashMap<String, Resumable>,
    timers: TimerWheel,
    /// Final tasks not yet handed to the leader for writing.
    finished: HashMap<TaskId, Task>,
    dirty: Dirty,
    reservation_records: Vec<ReservationRecord>,
    happenings: Vec<Happening>,
    /// Agents whose derived state may have changed.
    touched: BTreeSet<AgentId>,
    try_tasks: BTreeSet<TaskId>,
    try_agents: BTreeSet<AgentId>,
    /// Counts offers, ordering them where timestamps tie (round robin).
    offers: u64,
    rng: SmallRng,
}

const TIMER_KIND: &str = "routing.task";

fn timer_key(task: TaskId) -> String {
    format!("task:{task}")
}

fn task_of_timer(key: &str) -> Option<TaskId> {
    key.strip_prefix("task:")
        .and_then(|id| Uuid::parse_str(id).ok())
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn after(at: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    at + chrono::Duration::milliseconds(millis(duration))
}

fn seconds(seconds: u32) -> Duration {
    Duration::from_secs(u64::from(seconds))
}

fn compile(source: &str) -> ApiResult<Expr> {
    expr::parse(source).map_err(|error| ApiError::invalid_field("/target", error.to_string()))
}

impl Router {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            activities: BTreeMap::new(),
            agents: HashMap::new(),
            queues: HashMap::new(),
            queue_names: HashMap::new(),
            rules: Vec::new(),
            tasks: HashMap::new(),
            by_external: HashMap::new(),
            pruned_at: None,
            reservations: HashMap::new(),
            past_reservations: HashMap::new(),
            slots: HashMap::new(),
            targeted: HashMap::new(),
            resumable: HashMap::new(),
            timers: TimerWheel::default(),
            finished: HashMap::new(),
            dirty: Dirty::default(),
            reservation_records: Vec::new(),
            happenings: Vec::new(),
            touched: BTreeSet::new(),
            try_tasks: BTreeSet::new(),
            try_agents: BTreeSet::new(),
            offers: 0,
            rng: SmallRng::from_os_rng(),
        }
    }

    /// Rebuilds the router from what the database holds, then makes up for
    /// what happened while nobody held it: due timers fire, free agents get work.
    pub fn restore(settings: Settings, snapshot: Snapshot, now: DateTime<Utc>) -> ApiResult<Self> {
        let mut router = Self::new(settings);
        for activity in snapshot.activities {
            router.activities.insert(activity.name.clone(), activity);
        }
        for queue in snapshot.queues {
            router.install_queue(queue)?;
        }
        for agent in snapshot.agents {
            router.install_agent(agent, now);
        }
        router.install_rules(snapshot.rules)?;
        router.timers = TimerWheel::new(snapshot.timers);
        for task in snapshot.active {
            router.install_task(task, now);
        }
        router.restore_recent(snapshot.recent, now);
        for id in router.agents.keys().copied().collect::<Vec<_>>() {
            router.refresh_state(id, now, false);
        }
        router.fire_due(now);
        router.try_agents.extend(router.agents.keys().copied());
        router.dispatch(now);
        Ok(router)
    }

    /// Applies one command. On error nothing changed.
    pub fn execute(
        &mut self,
        actor: &Actor,
        command: Command,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        let mut outcome = self.apply(actor, command, now)?;
        self.dispatch(now);
        self.announce_states(now);
        // An agent's answer shows where matching left them (ready, or reserved at once).
        if let Outcome::Agent { agent } = &mut outcome
            && let Ok(view) = self.agent_view(agent.id, now)
        {
            *agent = view;
        }
        Ok(outcome)
    }

    fn apply(&mut self, actor: &Actor, command: Command, now: DateTime<Utc>) -> ApiResult<Outcome> {
        match command {
            Command::ListActivities => self.list_activities(actor),
            Command::PutActivity { activity } => self.put_activity(actor, activity, now),
            Command::DeleteActivity { name } => self.delete_activity(actor, &name),
            Command::CreateAgent { spec } => self.create_agent(actor, spec, now),
            Command::UpdateAgent {
                id,
                patch,
                if_version,
            } => self.update_agent(actor, id, patch, if_version, now),
            Command::DeleteAgent { id } => self.delete_agent(actor, id),
            Command::GetAgent { id } => self.get_agent(actor, id, now),
            Command::ListAgents { after, limit } => self.list_agents(actor, after, limit, now),
            Command::SignIn { agent, activity } => self.sign_in(actor, agent, activity, now),
            Command::SignOut { agent } => self.sign_out(actor, agent, now),
            Command::SetActivity { agent, activity } => {
                self.set_activity(actor, agent, &activity, now)
            }
            Command::AgentOffers { agent } => self.agent_offers(actor, agent, now),
            Command::CreateQueue { spec } => self.create_queue(actor, spec, now),
            Command::ReplaceQueue {
                id,
                spec,
                if_version,
            } => self.replace_queue(actor, id, spec, if_version, now),
            Command::DeleteQueue { id } => self.delete_queue(actor, id),
            Command::GetQueue { id } => self.get_queue(actor, &id),
            Command::ListQueues => self.list_queues(actor),
            Command::GetRules => self.get_rules(actor),
            Command::PutRules { rules } => self.put_rules(actor, rules),
            Command::CreateTask { task } => self.create_task(actor, task, now),
            Command::GetTask { id } => self.get_task(actor, id, now),
            Command::CancelTask { id, reason } => self.cancel_task(actor, id, reason, now),
            Command::CompleteTask { id } => self.complete_task(actor, id, now),
            Command::EndWrapUp { id } => self.end_wrap_up(actor, id, now),
            Command::TransferTask { id, to } => self.transfer_task(actor, id, to, now),
            Command::RequestCallback { id, number } => {
                self.request_callback(actor, id, number, now)
            }
            Command::ReportAttempt { id, result } => self.report_attempt(actor, id, result, now),
            Command::Accept { reservation } => self.accept(actor, reservation, now),
            Command::Reject {
                reservation,
                reason,
            } => self.reject(actor, reservation, reason, now),
            Command::CallAnswered { call_id, agent } => {
                self.call_answered(actor, &call_id, agent, now)
            }
            Command::CallEnded { call_id } => self.call_ended(actor, &call_id, now),
            Command::CallAbandoned { call_id } => self.call_abandoned(actor, &call_id, now),
            Command::ActiveTasks { queues } => self.active_tasks(actor, &queues, now),
            Command::QueueStats { queue } => self.queue_stats(actor, queue.as_deref(), now),
            Command::AgentStats { agent } => self.agent_stats(actor, agent, now),
        }
    }

    /// When the next timer is due.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.timers.next_due()
    }

    /// Fires every timer due at `now` (offer timeouts, wrap-up ends, relaxation
    /// and overflow deadlines, callbacks coming due).
    pub fn fire_due(&mut self, now: DateTime<Utc>) {
        self.prune(now);
        for timer in self.timers.take_due(now) {
            let Some(task) = task_of_timer(&timer.key) else {
                continue;
            };
            self.dirty.timers.insert(task);
            self.on_task_deadline(task, now);
        }
        self.dispatch(now);
        self.announce_states(now);
    }

    /// Forgets external ids of tasks final for more than a day (hourly).
    fn prune(&mut self, now: DateTime<Utc>) {
        let hour = chrono::Duration::hours(1);
        if self.pruned_at.is_some_and(|at| now - at < hour) {
            return;
        }
        self.pruned_at = Some(now);
        let cutoff = now - chrono::Duration::hours(24);
        let tasks = &self.tasks;
        self.by_external
            .retain(|_, (id, seen)| tasks.contains_key(id) || *seen >= cutoff);
    }

    /// Happenings recorded since the last [`take_changes`](Self::take_changes).
    pub fn pending_happenings(&self) -> usize {
        self.happenings.len()
    }

    /// Everything changed since the last call, for the leader to commit.
    pub fn take_changes(&mut self) -> Changes {
        let dirty = std::mem::take(&mut self.dirty);
        let mut changes = Changes {
            reservations: std::mem::take(&mut self.reservation_records),
            happenings: std::mem::take(&mut self.happenings),
            deleted_agents: dirty.deleted_agents,
            deleted_queues: dirty.deleted_queues,
            deleted_activities: dirty.deleted_activities,
            ..Changes::default()
        };
        let mut finished = std::mem::take(&mut self.finished);
        for id in dirty.tasks {
            if let Some(task) = self
                .tasks
                .get(&id)
                .cloned()
                .or_else(|| finished.remove(&id))
            {
                changes.tasks.push(task);
            }
        }
        for id in dirty.agents {
            if let Some(runtime) = self.agents.get(&id) {
                changes.agents.push(runtime.agent.clone());
            }
        }
        for id in dirty.queues {
            if let Some(runtime) = self.queues.get(&id) {
                changes.queues.push(runtime.queue.clone());
            }
        }
        for name in dirty.activities {
            if let Some(activity) = self.activities.get(&name) {
                changes.activities.push(activity.clone());
            }
        }
        if dirty.rules {
            changes.rules = Some(self.rules.iter().map(|(rule, _)| rule.clone()).collect());
        }
        for happening in &changes.happenings {
            if let Some(task) = &happening.task
                && let Some(queue) = self.queues.get(&task.queue_id)
            {
                changes
                    .service_levels
                    .insert(task.queue_id, queue.queue.spec.service_level_seconds);
            }
        }
        for id in dirty.timers {
            let key = timer_key(id);
            match self.timers.get(&key) {
                Some(timer) => changes.timers_set.push(timer.clone()),
                None => changes.timers_cancel.push(key),
            }
        }
        changes
    }

    fn activity_available(&self, name: &str) -> bool {
        self.activities
            .get(name)
            .is_some_and(|activity| activity.available)
    }

    fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.settings.time_zone).date_naive()
    }

    fn emit(&mut self, happening: Happening) {
        self.happenings.push(happening);
    }

    /// The set of agents a queue's step targets admit, as `agent -> first step`.
    fn first_step(targets: &[Expr], agent: &Agent) -> Option<u32> {
        let subject = agents::AgentSubject(agent);
        targets
            .iter()
            .position(|target| target.matches(&subject))
            .and_then(|step| u32::try_from(step).ok())
    }

    fn roles_problem(actor: &Actor, roles: &[hotline_kit::auth::Role]) -> ApiResult<()> {
        if actor.has_any(roles) {
            Ok(())
        } else {
            let wanted: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
            Err(ApiError::forbidden(format!(
                "this needs one of the roles: {}",
                wanted.join(", ")
            )))
        }
    }
}

/// Known ids, for tests and the leader's lookups.
impl Router {
    pub fn has_task(&self, id: TaskId) -> bool {
        self.tasks.contains_key(&id)
    }

    pub fn agent_ids(&self) -> HashSet<AgentId> {
        self.agents.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests;
