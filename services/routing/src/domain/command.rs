//! What the router is asked to do, by whom, and what it answers. Commands
//! travel as JSON from a replica that does not hold the router lease to the
//! one that does (docs/adr/0008-routing-across-replicas.md).

use std::collections::{BTreeMap, HashSet};

use hotline_kit::{
    auth::{Principal, Role},
    rest::Page,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::model::{
    Activity, AgentId, AgentPatch, AgentSpec, Channel, EntryRule, QueueSpec, TaskKind,
};
use crate::views::{AgentStats, AgentView, QueueStats, QueueView, Rules, TaskView};

/// Who asks: the verified caller's client id and roles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub subject: String,
    pub roles: HashSet<Role>,
}

impl Actor {
    pub fn of(principal: &Principal) -> Self {
        Self {
            subject: principal.subject.clone(),
            roles: principal.roles.clone(),
        }
    }

    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|role| self.roles.contains(role))
    }

    /// Supervisors, admins and systems (CTI adapters) act for any agent.
    pub fn acts_for_anyone(&self) -> bool {
        self.has_any(&[Role::Supervisor, Role::Admin, Role::Service])
    }

    /// Whether the caller may act as the agent whose login is `login`.
    pub fn may_act_for(&self, login: Option<&str>) -> bool {
        self.acts_for_anyone()
            || (self.roles.contains(&Role::Agent) && login == Some(self.subject.as_str()))
    }
}

/// A task a client or the switch adds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// The switch's call id or the client's own id: creating a task with an id
    /// already used answers with that task instead of a second one.
    #[serde(default)]
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub external_id: Option<String>,
    #[serde(default)]
    pub kind: TaskKind,
    #[serde(default)]
    pub channel: Channel,
    /// Queue name or id; chosen by the entry rules when absent.
    #[serde(default)]
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub queue: Option<String>,
    #[serde(default)]
    #[schema(minimum = -1000, maximum = 1000)]
    pub priority: i32,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    #[schema(
        max_length = 40,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub calling_number: Option<String>,
    #[serde(default)]
    #[schema(
        max_length = 40,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub dialled_number: Option<String>,
    /// What the caller chose in the IVR, e.g. {"menu": "2", "language": "zh"}.
    #[serde(default)]
    pub ivr: BTreeMap<String, String>,
    /// The number to call (outbound tasks).
    #[serde(default)]
    #[schema(
        max_length = 40,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub number: Option<String>,
    /// Offer only to this agent.
    #[serde(default)]
    pub agent_id: Option<Uuid>,
    /// Filled in by routing from identity's screen pop; clients leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub customer: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub customer_id: Option<String>,
}

/// Where a transfer sends the task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferTarget {
    /// Offered to this agent only.
    Agent(Uuid),
    /// Back in line in this queue (name or id), keeping its place.
    Queue(String),
}

/// What happened when an agent dialled a callback or an outbound task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptResult {
    /// Somebody answered: the agent goes on with the task.
    Connected,
    /// Nobody answered: tried again on the retry schedule, then given up.
    NoAnswer,
    Busy,
    /// The number does not belong to the customer: given up at once.
    WrongNumber,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    ListActivities,
    PutActivity {
        activity: Activity,
    },
    DeleteActivity {
        name: String,
    },
    CreateAgent {
        spec: AgentSpec,
    },
    UpdateAgent {
        id: AgentId,
        patch: AgentPatch,
        if_version: Option<i64>,
    },
    DeleteAgent {
        id: AgentId,
    },
    GetAgent {
        id: AgentId,
    },
    ListAgents {
        after: Option<AgentId>,
        limit: usize,
    },
    SignIn {
        agent: AgentId,
        activity: Option<String>,
    },
    SignOut {
        agent: AgentId,
    },
    SetActivity {
        agent: AgentId,
        activity: String,
    },
    AgentOffers {
        agent: AgentId,
    },
    CreateQueue {
        spec: QueueSpec,
    },
    ReplaceQueue {
        id: Uuid,
        spec: QueueSpec,
        if_version: Option<i64>,
    },
    DeleteQueue {
        id: Uuid,
    },
    GetQueue {
        id: String,
    },
    ListQueues,
    GetRules,
    PutRules {
        rules: Vec<EntryRule>,
    },
    CreateTask {
        task: NewTask,
    },
    GetTask {
        id: Uuid,
    },
    CancelTask {
        id: Uuid,
        reason: Option<String>,
    },
    CompleteTask {
        id: Uuid,
    },
    EndWrapUp {
        id: Uuid,
    },
    TransferTask {
        id: Uuid,
        to: TransferTarget,
    },
    RequestCallback {
        id: Uuid,
        number: Option<String>,
    },
    ReportAttempt {
        id: Uuid,
        result: AttemptResult,
    },
    Accept {
        reservation: Uuid,
    },
    Reject {
        reservation: Uuid,
        reason: Option<String>,
    },
    CallAnswered {
        call_id: String,
        agent: Option<AgentId>,
    },
    CallEnded {
        call_id: String,
    },
    CallAbandoned {
        call_id: String,
    },
    /// Every task not final (in these queues, all when empty).
    ActiveTasks {
        queues: Vec<Uuid>,
    },
    QueueStats {
        queue: Option<String>,
    },
    AgentStats {
        agent: Option<AgentId>,
    },
}

impl Command {
    /// Whether the command only reads (answered without a database write).
    pub fn reads_only(&self) -> bool {
        matches!(
            self,
            Self::ListActivities
                | Self::GetAgent { .. }
                | Self::ListAgents { .. }
                | Self::AgentOffers { .. }
                | Self::GetQueue { .. }
                | Self::ListQueues
                | Self::GetRules
                | Self::GetTask { .. }
                | Self::ActiveTasks { .. }
                | Self::QueueStats { .. }
                | Self::AgentStats { .. }
        )
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[expect(
    clippy::large_enum_variant,
    reason = "an answer is moved once, to its caller"
)]
pub enum Outcome {
    Activities {
        activities: Vec<Activity>,
    },
    Activity {
        activity: Activity,
    },
    Agent {
        agent: AgentView,
    },
    Agents {
        page: Page<AgentView>,
    },
    Queue {
        queue: QueueView,
    },
    Queues {
        queues: Vec<QueueView>,
    },
    Rules {
        rules: Rules,
    },
    /// `created` is false when the task existed already (same external id).
    Task {
        task: TaskView,
        created: bool,
    },
    Tasks {
        tasks: Vec<TaskView>,
    },
    QueueStats {
        stats: Vec<QueueStats>,
    },
    AgentStats {
        stats: Vec<AgentStats>,
    },
    Done,
}

/// Takes the answer a command gives apart; any other answer is a bug, told
/// the client as a 500.
macro_rules! answers {
    ($($method:ident: $variant:ident { $field:ident } -> $type:ty),* $(,)?) => {
        impl Outcome {
            $(
                pub fn $method(self) -> hotline_kit::ApiResult<$type> {
                    if let Self::$variant { $field } = self {
                        Ok($field)
                    } else {
                        Err(hotline_kit::ApiError::internal(anyhow::anyhow!(
                            "the router answered {self:?} where {} was due",
                            stringify!($variant)
                        )))
                    }
                }
            )*
        }
    };
}

answers!(
    activities: Activities { activities } -> Vec<Activity>,
    activity: Activity { activity } -> Activity,
    agent: Agent { agent } -> AgentView,
    agents: Agents { page } -> Page<AgentView>,
    queue: Queue { queue } -> QueueView,
    queues: Queues { queues } -> Vec<QueueView>,
    rules: Rules { rules } -> Rules,
    tasks: Tasks { tasks } -> Vec<TaskView>,
    queue_stats: QueueStats { stats } -> Vec<QueueStats>,
    agent_stats: AgentStats { stats } -> Vec<AgentStats>,
);

impl Outcome {
    /// The task, and whether this command made it.
    pub fn task(self) -> hotline_kit::ApiResult<(TaskView, bool)> {
        if let Self::Task { task, created } = self {
            Ok((task, created))
        } else {
            Err(hotline_kit::ApiError::internal(anyhow::anyhow!(
                "the router answered {self:?} where a task was due"
            )))
        }
    }
}
