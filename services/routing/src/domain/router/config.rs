//! Activities, queues and entry rules: what supervisors configure.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use hotline_kit::{ApiError, ApiResult, auth::Role};
use uuid::Uuid;

use super::{QueueDay, QueueRuntime, Router, compile};
use crate::{
    domain::{
        command::{Actor, Outcome},
        expr,
        model::{Activity, Destination, EntryRule, OFFLINE, Queue, QueueId, QueueSpec, READY},
    },
    views::{QueueView, Rules},
};

/// Who configures the center.
pub(super) const LEADS: &[Role] = &[Role::Supervisor, Role::Admin];
/// Who may read its configuration and figures.
pub(super) const STAFF: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin, Role::Service];

impl Router {
    pub(super) fn list_activities(&self, actor: &Actor) -> ApiResult<Outcome> {
        Self::roles_problem(actor, STAFF)?;
        Ok(Outcome::Activities {
            activities: self.activities.values().cloned().collect(),
        })
    }

    pub(super) fn put_activity(
        &mut self,
        actor: &Actor,
        activity: Activity,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        Self::roles_problem(actor, LEADS)?;
        let problems = activity.problems();
        if !problems.is_empty() {
            return Err(ApiError::invalid(problems));
        }
        if activity.name == self.settings.no_answer_activity && activity.available {
            return Err(ApiError::invalid_field(
                "/available",
                "the activity for unanswered offers (routing.no_answer_activity) cannot be available",
            ));
        }
        if activity.name == READY && !activity.available {
            return Err(ApiError::invalid_field(
                "/available",
                "ready is always available",
            ));
        }
        self.activities
            .insert(activity.name.clone(), activity.clone());
        self.dirty.activities.insert(activity.name.clone());
        // Agents in it may have become (un)available.
        let affected: Vec<_> = self
            .agents
            .values()
            .filter(|runtime| runtime.agent.activity == activity.name)
            .map(|runtime| runtime.agent.id)
            .collect();
        for id in affected {
            if let Some(runtime) = self.agents.get_mut(&id) {
                runtime.available = activity.available;
            }
            self.try_agents.insert(id);
            self.touched.insert(id);
        }
        let _ = now;
        Ok(Outcome::Activity { activity })
    }

    pub(super) fn delete_activity(&mut self, actor: &Actor, name: &str) -> ApiResult<Outcome> {
        Self::roles_problem(actor, LEADS)?;
        if !self.activities.contains_key(name) {
            return Err(ApiError::not_found(
                "activity_not_found",
                format!("no activity {name}"),
            ));
        }
        if name == OFFLINE || name == READY || name == self.settings.no_answer_activity {
            return Err(ApiError::conflict(
                "activity_in_use",
                format!("{name} is built in and cannot be deleted"),
            ));
        }
        if self
            .agents
            .values()
            .any(|runtime| runtime.agent.activity == name)
        {
            return Err(ApiError::conflict(
                "activity_in_use",
                format!("agents are in {name}; move them to another activity first"),
            ));
        }
        self.activities.remove(name);
        self.dirty.activities.remove(name);
        self.dirty.deleted_activities.push(name.to_owned());
        Ok(Outcome::Done)
    }

    /// The queue a client names by id or by name.
    pub(super) fn resolve_queue(&self, reference: &str) -> ApiResult<QueueId> {
        if let Ok(id) = Uuid::parse_str(reference)
            && self.queues.contains_key(&id)
        {
            return Ok(id);
        }
        self.queue_names
            .get(reference)
            .copied()
            .ok_or_else(|| ApiError::not_found("queue_not_found", format!("no queue {reference}")))
    }

    fn check_queue_spec(&self, spec: &QueueSpec, id: Option<QueueId>) -> ApiResult<()> {
        let problems = spec.problems();
        if !problems.is_empty() {
            return Err(ApiError::invalid(problems));
        }
        if let Some(existing) = self.queue_names.get(&spec.name)
            && Some(*existing) != id
        {
            return Err(ApiError::conflict(
                "queue_name_taken",
                format!("a queue is named {} already", spec.name),
            ));
        }
        for (index, rule) in spec.overflow.iter().enumerate() {
            if let Destination::Queue(name) = &rule.to
                && !self.queue_names.contains_key(name)
            {
                return Err(ApiError::invalid_field(
                    format!("/overflow/{index}/to/queue"),
                    format!("no queue {name}"),
                ));
            }
        }
        Ok(())
    }

    pub(super) fn create_queue(
        &mut self,
        actor: &Actor,
        spec: QueueSpec,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        Self::roles_problem(actor, LEADS)?;
        self.check_queue_spec(&spec, None)?;
        let queue = Queue {
            id: Uuid::now_v7(),
            spec,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let id = queue.id;
        self.install_queue(queue)?;
        self.dirty.queues.insert(id);
        self.try_agents_of(id);
        self.queue_outcome(id)
    }

    pub(super) fn replace_queue(
        &mut self,
        actor: &Actor,
        id: QueueId,
        spec: QueueSpec,
        if_version: Option<i64>,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        Self::roles_problem(actor, LEADS)?;
        let current = self
            .queues
            .get(&id)
            .ok_or_else(|| ApiError::not_found("queue_not_found", format!("no queue {id}")))?;
        if if_version.is_some_and(|version| version != current.queue.version) {
            return Err(hotline_kit::rest::stale_version());
        }
        let renamed_from =
            (current.queue.spec.name != spec.name).then(|| current.queue.spec.name.clone());
        if let Some(old) = &renamed_from
            && self.queue_referenced(old)
        {
            return Err(ApiError::conflict(
                "queue_in_use",
                format!("overflow or entry rules name {old}; change them before renaming it"),
            ));
        }
        self.check_queue_spec(&spec, Some(id))?;
        let mut queue = current.queue.clone();
        queue.spec = spec;
        queue.version += 1;
        queue.updated_at = now;
        // Tasks keep their places; their ranks, steps and deadlines follow the new settings.
        let waiting: Vec<_> = self.tasks_in(id);
        for task in &waiting {
            self.unslot(*task);
        }
        if let Some(old) = renamed_from {
            self.queue_names.remove(&old);
        }
        self.install_queue(queue)?;
        for task in waiting {
            self.requeue_in_place(task, now);
        }
        self.dirty.queues.insert(id);
        self.try_agents_of(id);
        self.queue_outcome(id)
    }

    pub(super) fn delete_queue(&mut self, actor: &Actor, id: QueueId) -> ApiResult<Outcome> {
        Self::roles_problem(actor, LEADS)?;
        let runtime = self
            .queues
            .get(&id)
            .ok_or_else(|| ApiError::not_found("queue_not_found", format!("no queue {id}")))?;
        let name = runtime.queue.spec.name.clone();
        if self.tasks.values().any(|task| task.queue_id == id) {
            return Err(ApiError::conflict(
                "queue_in_use",
                format!("tasks are in {name}; let them finish or transfer them first"),
            ));
        }
        if self.queue_referenced(&name) {
            return Err(ApiError::conflict(
                "queue_in_use",
                format!("overflow or entry rules name {name}; change them first"),
            ));
        }
        self.queues.remove(&id);
        self.queue_names.remove(&name);
        for runtime in self.agents.values_mut() {
            runtime.memberships.remove(&id);
        }
        self.dirty.queues.remove(&id);
        self.dirty.deleted_queues.push(id);
        Ok(Outcome::Done)
    }

    fn queue_referenced(&self, name: &str) -> bool {
        self.rules.iter().any(|(rule, _)| rule.queue == name)
            || self.queues.values().any(|runtime| {
                runtime
                    .queue
                    .spec
                    .overflow
                    .iter()
                    .any(|rule| rule.to == Destination::Queue(name.to_owned()))
            })
    }

    pub(super) fn get_queue(&self, actor: &Actor, reference: &str) -> ApiResult<Outcome> {
        Self::roles_problem(actor, STAFF)?;
        let id = self.resolve_queue(reference)?;
        self.queue_outcome(id)
    }

    pub(super) fn list_queues(&self, actor: &Actor) -> ApiResult<Outcome> {
        Self::roles_problem(actor, STAFF)?;
        let mut queues: Vec<QueueView> =
            self.queues.values().map(|q| queue_view(&q.queue)).collect();
        queues.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        Ok(Outcome::Queues { queues })
    }

    fn queue_outcome(&self, id: QueueId) -> ApiResult<Outcome> {
        let runtime = self
            .queues
            .get(&id)
            .ok_or_else(|| ApiError::not_found("queue_not_found", format!("no queue {id}")))?;
        Ok(Outcome::Queue {
            queue: queue_view(&runtime.queue),
        })
    }

    pub(super) fn get_rules(&self, actor: &Actor) -> ApiResult<Outcome> {
        Self::roles_problem(actor, STAFF)?;
        Ok(Outcome::Rules {
            rules: Rules {
                rules: self.rules.iter().map(|(rule, _)| rule.clone()).collect(),
            },
        })
    }

    pub(super) fn put_rules(&mut self, actor: &Actor, rules: Vec<EntryRule>) -> ApiResult<Outcome> {
        Self::roles_problem(actor, LEADS)?;
        if rules.len() > 500 {
            return Err(ApiError::invalid_field("/rules", "at most 500 rules"));
        }
        let mut problems = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            problems.extend(rule.problems(index));
            if !self.queue_names.contains_key(&rule.queue) {
                problems.push(hotline_kit::error::FieldError {
                    pointer: format!("/rules/{index}/queue"),
                    message: format!("no queue {}", rule.queue),
                });
            }
        }
        if !problems.is_empty() {
            return Err(ApiError::invalid(problems));
        }
        self.install_rules(rules.clone())?;
        self.dirty.rules = true;
        Ok(Outcome::Rules {
            rules: Rules { rules },
        })
    }

    pub(super) fn install_rules(&mut self, rules: Vec<EntryRule>) -> ApiResult<()> {
        let mut compiled = Vec::with_capacity(rules.len());
        for rule in rules {
            let when = expr::parse(&rule.when)
                .map_err(|error| ApiError::invalid_field("/when", error.to_string()))?;
            compiled.push((rule, when));
        }
        self.rules = compiled;
        Ok(())
    }

    /// Adds or replaces a queue and works out which agents it may offer work to.
    pub(super) fn install_queue(&mut self, queue: Queue) -> ApiResult<()> {
        let targets = queue
            .spec
            .step_targets()
            .map(compile)
            .collect::<ApiResult<Vec<_>>>()?;
        let id = queue.id;
        let mut members = BTreeMap::new();
        for runtime in self.agents.values_mut() {
            runtime.memberships.remove(&id);
            if let Some(step) = Self::first_step(&targets, &runtime.agent) {
                members.insert(runtime.agent.id, step);
                runtime.memberships.insert(id, step);
            }
        }
        let previous = self.queues.remove(&id);
        let (handle_ms, last_offered, today, active, queued) = previous.map_or_else(
            || {
                (
                    Default::default(),
                    HashMap::new(),
                    QueueDay::default(),
                    BTreeSet::new(),
                    BTreeSet::new(),
                )
            },
            |old| {
                (
                    old.handle_ms,
                    old.last_offered,
                    old.today,
                    old.active,
                    old.queued,
                )
            },
        );
        self.queue_names.insert(queue.spec.name.clone(), id);
        self.queues.insert(
            id,
            QueueRuntime {
                ranking_skill: queue.spec.ranking_skill(),
                queue,
                targets,
                members,
                waiting: BTreeSet::new(),
                active,
                queued,
                handle_ms,
                last_offered,
                today,
            },
        );
        Ok(())
    }

    fn try_agents_of(&mut self, queue: QueueId) {
        if let Some(runtime) = self.queues.get(&queue) {
            self.try_agents.extend(runtime.members.keys().copied());
        }
    }
}

pub(super) fn queue_view(queue: &Queue) -> QueueView {
    QueueView {
        id: queue.id,
        spec: queue.spec.clone(),
        version: queue.version,
        created_at: queue.created_at,
        updated_at: queue.updated_at,
    }
}
