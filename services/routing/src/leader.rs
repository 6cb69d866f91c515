//! The router's home on the replica holding the router lease: it restores the
//! router from the database, applies commands in batches, fires due timers,
//! and commits each batch in one transaction fenced by the lease — rows,
//! timers and outbox events together — before anyone hears of it.
//!
//! A batch that fails to commit leaves the database as it was; the router it
//! ran on is dropped and rebuilt from the database, and the batch's callers
//! get 503 (they retry; task creation is idempotent by external id).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use chrono::Utc;
use hotline_kit::{
    ApiError, ApiResult,
    lease::{self, FenceError, FencedWrite, Grant, Leadership},
    outbox::Outbox,
};
use sea_orm::{DatabaseBackend, DatabaseConnection, TransactionTrait};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::{
    domain::{
        command::{Actor, Command, Outcome},
        model::AgentId,
        router::{Changes, Router, Settings},
    },
    events, store,
    views::{AgentView, TaskView},
};

/// A committed change, for the streams of agents, switches and wallboards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Notification {
    /// A task the subscriber holds or watches, as it is when the stream (re)starts.
    Snapshot {
        task: TaskView,
    },
    Task {
        event: String,
        /// The agent the change concerns (offered to, withdrawn from, working on it).
        concerns: Option<AgentId>,
        task: TaskView,
    },
    Agent {
        event: String,
        agent: AgentView,
    },
}

impl Notification {
    /// What an agent's stream calls this change: `snapshot` (a task the agent
    /// holds, sent when the stream starts and after every reconnection),
    /// `offer`, `offer_withdrawn` (timed out, rejected, taken back), `task` (a
    /// change to one of their tasks) or `agent` (their own state).
    pub fn agent_kind(&self, agent: AgentId) -> &'static str {
        use crate::events::{TASK_REJECTED, TASK_RESERVED, TASK_TIMED_OUT, TASK_WITHDRAWN};
        match self {
            Self::Snapshot { .. } => "snapshot",
            Self::Task {
                event, concerns, ..
            } if *concerns == Some(agent) && event == TASK_RESERVED => "offer",
            Self::Task { event, .. }
                if [TASK_TIMED_OUT, TASK_REJECTED, TASK_WITHDRAWN].contains(&event.as_str()) =>
            {
                "offer_withdrawn"
            }
            Self::Task { .. } => "task",
            Self::Agent { .. } => "agent",
        }
    }
}

/// Fans committed changes out to the streams on this replica.
pub struct Hub {
    agents: Mutex<HashMap<AgentId, broadcast::Sender<Arc<Notification>>>>,
    tasks: broadcast::Sender<Arc<Notification>>,
}

/// Notifications one stream may fall behind by before it is resynchronised.
const AGENT_BACKLOG: usize = 256;
const TASK_BACKLOG: usize = 16_384;

impl Default for Hub {
    fn default() -> Self {
        Self {
            agents: Mutex::new(HashMap::new()),
            tasks: broadcast::channel(TASK_BACKLOG).0,
        }
    }
}

impl Hub {
    pub fn subscribe_agent(&self, agent: AgentId) -> broadcast::Receiver<Arc<Notification>> {
        let mut agents = self.agents.lock().unwrap_or_else(PoisonError::into_inner);
        agents
            .entry(agent)
            .or_insert_with(|| broadcast::channel(AGENT_BACKLOG).0)
            .subscribe()
    }

    pub fn subscribe_tasks(&self) -> broadcast::Receiver<Arc<Notification>> {
        self.tasks.subscribe()
    }

    fn publish(&self, notification: Notification) {
        let agent = match &notification {
            Notification::Task { concerns, .. } => *concerns,
            Notification::Agent { agent, .. } => Some(agent.id),
            Notification::Snapshot { .. } => None,
        };
        let notification = Arc::new(notification);
        if let Some(agent) = agent {
            let mut agents = self.agents.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(sender) = agents.get(&agent) {
                if sender.receiver_count() == 0 {
                    agents.remove(&agent);
                } else {
                    let _ = sender.send(notification.clone());
                }
            }
        }
        if matches!(*notification, Notification::Task { .. }) && self.tasks.receiver_count() > 0 {
            let _ = self.tasks.send(notification);
        }
    }
}

/// A command on its way to the router, and where its answer goes.
pub struct Request {
    pub actor: Actor,
    pub command: Command,
    pub traceparent: Option<String>,
    pub reply: oneshot::Sender<ApiResult<Outcome>>,
}

/// The answer of a replica that does not hold the router lease (any more).
pub fn not_leader() -> ApiError {
    ApiError::unavailable("not_leader", "this replica does not hold the router; retry")
}

pub struct Leader {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub leadership: Arc<Leadership>,
    pub settings: Settings,
    pub lease_ttl: Duration,
    pub batch_max: usize,
    pub hub: Arc<Hub>,
}

/// Why routing stopped applying commands.
enum Stop {
    Shutdown,
    Lost,
    /// A batch failed to commit (the committer has the error).
    Failed,
}

/// How a term as the router's holder ended (a failed commit is an error).
enum Led {
    Shutdown,
    Lost,
}

#[derive(Debug, thiserror::Error)]
enum BatchError {
    #[error("lease lost")]
    Lost,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<FenceError> for BatchError {
    fn from(error: FenceError) -> Self {
        match error {
            FenceError::Lost(_) => Self::Lost,
            FenceError::Db(error) => Self::Failed(error.into()),
        }
    }
}

impl From<sea_orm::DbErr> for BatchError {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::Failed(error.into())
    }
}

impl Leader {
    /// Serves router requests while this replica holds the lease, until `shutdown`.
    pub async fn run(
        self,
        mut requests: mpsc::Receiver<Request>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut leadership = self.leadership.watch();
        let mut failures = 0u32;
        loop {
            let grant = leadership.borrow_and_update().clone();
            let Some(grant) = grant else {
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    changed = leadership.changed() => if changed.is_err() { return Ok(()) },
                    request = requests.recv() => match request {
                        Some(request) => { let _ = request.reply.send(Err(not_leader())); }
                        None => return Ok(()),
                    },
                }
                continue;
            };
            match self
                .lead(&grant, &mut requests, &mut leadership, &shutdown)
                .await
            {
                Ok(Led::Shutdown) => return Ok(()),
                Ok(Led::Lost) => {
                    tracing::warn!(
                        epoch = grant.epoch,
                        "router lease lost; this replica forwards to the new holder"
                    );
                    failures = 0;
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(
                        error = format!("{error:#}"),
                        failures,
                        "router failed; restoring it from the database"
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(Duration::from_millis(200) * failures.min(25)) => {}
                    }
                }
            }
        }
    }

    async fn lead(
        &self,
        grant: &Grant,
        requests: &mut mpsc::Receiver<Request>,
        leadership: &mut watch::Receiver<Option<Grant>>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Led> {
        let now = Utc::now();
        let snapshot = store::load(&self.db, self.settings.time_zone, now).await?;
        let mut router = Router::restore(self.settings.clone(), snapshot, now)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // One batch is written at a time, by a committer; meanwhile the router
        // goes on applying commands, and everything applied while a write is
        // under way is the next batch (group commit: batches grow with the
        // load). Answers, streams and events wait for their batch's commit.
        let (commits, pending) = mpsc::channel(1);
        let free = Arc::new(Semaphore::new(1));
        let (failed, mut failure) = watch::channel(false);
        let committer = tokio::spawn(self.committer(grant.clone()).run(pending, failed));
        let mut held = Held::default();
        let stop = self
            .route(
                &mut router,
                &mut held,
                grant,
                requests,
                leadership,
                shutdown,
                (&commits, &free),
                &mut failure,
            )
            .await;
        // What was applied but not handed over yet is written (or refused) too.
        if held.applied
            && let Ok(permit) = free.clone().acquire_owned().await
        {
            let _ = commits.send(held.cut(&mut router, permit)).await;
        }
        drop(commits);
        let written = committer
            .await
            .map_err(|e| anyhow::anyhow!("the committer stopped: {e}"))?;
        match (written, stop) {
            (Err(BatchError::Lost), _) => self.lost(grant),
            (Err(BatchError::Failed(error)), _) => Err(error),
            (Ok(()), Stop::Lost) => self.lost(grant),
            (Ok(()), Stop::Shutdown) => Ok(Led::Shutdown),
            // The committer says why when it fails; stopping without a word is a bug.
            (Ok(()), Stop::Failed) => Err(anyhow::anyhow!("the committer stopped unasked")),
        }
    }

    /// Applies commands and due timers until shutdown, the lease moves or a
    /// commit fails (the committer says so through `failure`), handing what
    /// it applied to the committer whenever the committer is free.
    #[allow(clippy::too_many_arguments)]
    async fn route(
        &self,
        router: &mut Router,
        held: &mut Held,
        grant: &Grant,
        requests: &mut mpsc::Receiver<Request>,
        leadership: &mut watch::Receiver<Option<Grant>>,
        shutdown: &CancellationToken,
        (commits, free): (&mpsc::Sender<Pending>, &Arc<Semaphore>),
        failure: &mut watch::Receiver<bool>,
    ) -> Stop {
        // What restoring changed (timers due while nobody held the lease) goes first.
        held.applied = true;
        tracing::info!(epoch = grant.epoch, "router restored; routing");
        loop {
            let due = router.next_due().map(|at| {
                let wait = (at - Utc::now()).to_std().unwrap_or_default();
                tokio::time::Instant::now() + wait
            });
            let sleep = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let room = self.batch_max.saturating_sub(held.replies.len());
            let batch = tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    while let Ok(request) = requests.try_recv() {
                        let _ = request.reply.send(Err(not_leader()));
                    }
                    return Stop::Shutdown;
                }
                _ = failure.changed() => return Stop::Failed,
                changed = leadership.changed() => {
                    if changed.is_err() || leadership.borrow().as_ref() != Some(grant) {
                        return Stop::Lost;
                    }
                    continue;
                }
                // The committer is free: it takes everything applied so far.
                permit = free.clone().acquire_owned(), if held.applied => {
                    let Ok(permit) = permit else { return Stop::Failed };
                    if commits.send(held.cut(router, permit)).await.is_err() {
                        return Stop::Failed;
                    }
                    continue;
                }
                request = requests.recv(), if room > 0 => {
                    let Some(request) = request else { return Stop::Shutdown };
                    let mut batch = vec![request];
                    while batch.len() < room {
                        match requests.try_recv() {
                            Ok(request) => batch.push(request),
                            Err(_) => break,
                        }
                    }
                    batch
                }
                () = sleep => Vec::new(),
            };
            let now = Utc::now();
            for request in batch {
                let outcome = router.execute(&request.actor, request.command, now);
                held.traceparents
                    .resize(router.pending_happenings(), request.traceparent.clone());
                held.replies.push((request.reply, outcome));
            }
            router.fire_due(now);
            // Even a batch that changed nothing waits its turn: its answers may
            // have read what the batches before it have yet to write.
            held.applied = true;
        }
    }

    fn lost(&self, grant: &Grant) -> anyhow::Result<Led> {
        self.leadership.lost(grant);
        Ok(Led::Lost)
    }

    fn committer(&self, grant: Grant) -> Committer {
        Committer {
            db: self.db.clone(),
            outbox: self.outbox.clone(),
            hub: self.hub.clone(),
            lease_ttl: self.lease_ttl,
            grant,
        }
    }
}

type Reply = (oneshot::Sender<ApiResult<Outcome>>, ApiResult<Outcome>);

/// What the router applied since it last handed a batch to the committer.
#[derive(Default)]
struct Held {
    replies: Vec<Reply>,
    traceparents: Vec<Option<String>>,
    /// Whether anything (a command, a timer, the restore) was applied since:
    /// then a batch waits for the committer, even one that changed nothing.
    applied: bool,
}

impl Held {
    /// The batch: the router's changes and the answers waiting for them.
    fn cut(&mut self, router: &mut Router, committing: OwnedSemaphorePermit) -> Pending {
        self.applied = false;
        Pending {
            changes: router.take_changes(),
            replies: std::mem::take(&mut self.replies),
            traceparents: std::mem::take(&mut self.traceparents),
            committing,
        }
    }
}

/// One applied batch on its way to the database.
struct Pending {
    changes: Changes,
    replies: Vec<Reply>,
    traceparents: Vec<Option<String>>,
    /// Released once the batch is written (or refused): the next batch is cut then.
    committing: OwnedSemaphorePermit,
}

/// Writes batches in the order they were applied, each in one transaction
/// fenced by the lease, then answers it and tells the streams. After a failed
/// write, every later batch is refused unwritten (it was applied on top of the
/// failed one) and the router is rebuilt from the database.
struct Committer {
    db: DatabaseConnection,
    outbox: Outbox,
    hub: Arc<Hub>,
    lease_ttl: Duration,
    grant: Grant,
}

impl Committer {
    async fn run(
        self,
        mut pending: mpsc::Receiver<Pending>,
        failed: watch::Sender<bool>,
    ) -> Result<(), BatchError> {
        let mut failure: Option<BatchError> = None;
        while let Some(batch) = pending.recv().await {
            // The permit goes when this batch is done with: the next is cut then.
            let Pending {
                changes,
                replies,
                traceparents,
                committing: _committing,
            } = batch;
            if let Some(error) = &failure {
                refuse(replies, error);
                continue;
            }
            if changes.is_empty() {
                answer(replies);
                continue;
            }
            let started = std::time::Instant::now();
            let written = self.write(&changes, traceparents).await;
            metrics::histogram!("routing_commit_seconds").record(started.elapsed().as_secs_f64());
            metrics::histogram!("routing_batch_commands").record(replies.len() as f64);
            match written {
                Ok(()) => {
                    self.outbox.wake();
                    answer(replies);
                    self.notify(changes);
                }
                Err(error) => {
                    refuse(replies, &error);
                    failure = Some(error);
                    let _ = failed.send(true);
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// The batch's rows, timers and outbox events, fenced by the lease: on
    /// PostgreSQL what every offer and assignment writes goes as one statement
    /// (one round trip, [`FencedWrite`]); set-up changes, and SQLite, take a
    /// transaction.
    async fn write(
        &self,
        changes: &Changes,
        traceparents: Vec<Option<String>>,
    ) -> Result<(), BatchError> {
        let now = Utc::now();
        let outbox_events = changes
            .happenings
            .iter()
            .enumerate()
            .filter_map(|(index, happening)| {
                let threshold = happening
                    .task
                    .as_ref()
                    .and_then(|task| changes.service_levels.get(&task.queue_id).copied())
                    .unwrap_or(0);
                events::event(
                    &self.outbox,
                    happening,
                    threshold,
                    traceparents.get(index).cloned().flatten(),
                    now,
                )
            })
            .collect();
        if self.db.get_database_backend() == DatabaseBackend::Postgres && !changes.changes_set_up()
        {
            let mut write = FencedWrite::new(&self.grant, self.lease_ttl);
            store::persist_fenced(&mut write, changes)?;
            self.outbox.enqueue_fenced(&mut write, outbox_events);
            write.execute(&self.db).await?;
            return Ok(());
        }
        let txn = self.db.begin().await?;
        lease::fence(&txn, &self.grant, self.lease_ttl).await?;
        store::persist(&txn, changes).await?;
        self.outbox.enqueue_many(&txn, outbox_events).await?;
        txn.commit().await?;
        Ok(())
    }

    fn notify(&self, changes: Changes) {
        for happening in changes.happenings {
            if let Some(task) = happening.task {
                self.hub.publish(Notification::Task {
                    event: happening.kind.to_owned(),
                    concerns: happening.concerns,
                    task,
                });
            } else if let Some(agent) = happening.agent {
                self.hub.publish(Notification::Agent {
                    event: happening.kind.to_owned(),
                    agent,
                });
            }
        }
    }
}

fn answer(replies: Vec<Reply>) {
    for (reply, outcome) in replies {
        let _ = reply.send(outcome);
    }
}

fn refuse(replies: Vec<Reply>, error: &BatchError) {
    let answer = match error {
        BatchError::Lost => not_leader(),
        BatchError::Failed(_) => {
            ApiError::unavailable("router_unavailable", "the change could not be saved; retry")
        }
    };
    for (reply, _) in replies {
        let _ = reply.send(Err(answer.clone()));
    }
}
