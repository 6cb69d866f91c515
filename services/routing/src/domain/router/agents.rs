//! Agents: who they are, their activities, what they hold and the states a
//! wallboard shows.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use hotline_kit::{ApiError, ApiResult, rest::Page};
use uuid::Uuid;

use super::{
    AgentDay, AgentRuntime, Happening, Load, Router,
    config::{LEADS, STAFF},
};
use crate::{
    domain::{
        command::{Actor, Outcome},
        expr::{Subject, Value},
        model::{
            Agent, AgentId, AgentPatch, AgentSpec, Channel, OFFLINE, PerChannel, READY, TaskStatus,
            Trigger,
        },
    },
    events,
    views::{AgentView, ChannelLoad},
};

/// An agent as target expressions see it.
pub(super) struct AgentSubject<'a>(pub &'a Agent);

impl Subject for AgentSubject<'_> {
    fn values(&self, path: &[String]) -> Vec<Value> {
        let spec = &self.0.spec;
        match path {
            [head, skill] if head == "skills" => spec
                .skills
                .get(skill)
                .map(|level| Value::Number(f64::from(*level)))
                .into_iter()
                .collect(),
            [head] if head == "group" || head == "groups" => {
                spec.groups.iter().cloned().map(Value::Text).collect()
            }
            [head] if head == "name" => vec![Value::Text(spec.name.clone())],
            [head] if head == "id" => vec![Value::Text(self.0.id.to_string())],
            [head] if head == "login" => spec.login.clone().map(Value::Text).into_iter().collect(),
            [head, rest @ ..] if head == "attributes" && !rest.is_empty() => {
                let mut value = spec.attributes.get(&rest[0]);
                for key in &rest[1..] {
                    value = value.and_then(|v| v.get(key));
                }
                value.map(Value::from_json).unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }
}

impl Router {
    pub(super) fn install_agent(&mut self, agent: Agent, now: DateTime<Utc>) {
        let id = agent.id;
        let available = self.activity_available(&agent.activity);
        let mut capacity = PerChannel::default();
        for channel in Channel::ALL {
            capacity[channel] = agent.capacity(channel);
        }
        let mut memberships = BTreeMap::new();
        for (queue_id, queue) in &mut self.queues {
            queue.members.remove(&id);
            if let Some(step) = Self::first_step(&queue.targets, &agent) {
                queue.members.insert(id, step);
                memberships.insert(*queue_id, step);
            }
        }
        let previous = self.agents.remove(&id);
        let runtime = match previous {
            Some(mut old) => {
                old.agent = agent;
                old.memberships = memberships;
                old.available = available;
                old.capacity = capacity;
                old
            }
            None => AgentRuntime {
                available,
                capacity,
                idle_since: PerChannel::filled(agent.activity_since),
                agent,
                load: PerChannel::default(),
                tasks: BTreeSet::new(),
                today: AgentDay::default(),
                memberships,
                state: String::new(),
                state_since: now,
            },
        };
        self.agents.insert(id, runtime);
    }

    pub(super) fn agent(&self, id: AgentId) -> ApiResult<&AgentRuntime> {
        self.agents
            .get(&id)
            .ok_or_else(|| ApiError::not_found("agent_not_found", format!("no agent {id}")))
    }

    /// The agent, if the caller may act for them (403 otherwise).
    fn agent_for(&self, actor: &Actor, id: AgentId) -> ApiResult<&AgentRuntime> {
        let runtime = self.agent(id)?;
        if actor.may_act_for(runtime.agent.spec.login.as_deref()) {
            Ok(runtime)
        } else {
            Err(ApiError::forbidden("an agent may act only for themselves"))
        }
    }

    fn check_login(&self, spec: &AgentSpec, id: Option<AgentId>) -> ApiResult<()> {
        if let Some(login) = &spec.login
            && self.agents.values().any(|other| {
                other.agent.spec.login.as_ref() == Some(login) && Some(other.agent.id) != id
            })
        {
            return Err(ApiError::conflict(
                "login_taken",
                format!("another agent signs in as {login}"),
            ));
        }
        Ok(())
    }

    pub(super) fn create_agent(
        &mut self,
        actor: &Actor,
        spec: AgentSpec,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        Self::roles_problem(actor, LEADS)?;
        let spec = spec.validated().map_err(ApiError::invalid)?;
        self.check_login(&spec, None)?;
        let agent = Agent {
            id: Uuid::now_v7(),
            spec,
            activity: OFFLINE.to_owned(),
            activity_since: now,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let id = agent.id;
        self.install_agent(agent, now);
        self.refresh_state(id, now, false);
        self.dirty.agents.insert(id);
        let view = self.agent_view(id, now)?;
        self.emit(Happening {
            kind: events::AGENT_CREATED,
            task: None,
            agent: Some(view.clone()),
            concerns: Some(id),
            timeline: None,
            ended: None,
        });
        Ok(Outcome::Agent { agent: view })
    }

    pub(super) fn update_agent(
        &mut self,
        actor: &Actor,
        id: AgentId,
        patch: AgentPatch,
        if_version: Option<i64>,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        Self::roles_problem(actor, LEADS)?;
        let current = self.agent(id)?;
        if if_version.is_some_and(|version| version != current.agent.version) {
            return Err(hotline_kit::rest::stale_version());
        }
        let spec = current
            .agent
            .spec
            .patched(patch)
            .validated()
            .map_err(ApiError::invalid)?;
        self.check_login(&spec, Some(id))?;
        let mut agent = current.agent.clone();
        agent.spec = spec;
        agent.version += 1;
        agent.updated_at = now;
        self.install_agent(agent, now);
        self.dirty.agents.insert(id);
        self.try_agents.insert(id);
        self.touched.insert(id);
        let view = self.agent_view(id, now)?;
        self.emit(Happening {
            kind: events::AGENT_UPDATED,
            task: None,
            agent: Some(view.clone()),
            concerns: Some(id),
            timeline: None,
            ended: None,
        });
        Ok(Outcome::Agent { agent: view })
    }

    pub(super) fn delete_agent(&mut self, actor: &Actor, id: AgentId) -> ApiResult<Outcome> {
        Self::roles_problem(actor, LEADS)?;
        let runtime = self.agent(id)?;
        if runtime.agent.activity != OFFLINE || !runtime.tasks.is_empty() {
            return Err(ApiError::conflict(
                "agent_signed_in",
                "sign the agent out (and let their tasks end) before deleting them",
            ));
        }
        if self
            .tasks
            .values()
            .any(|task| task.target_agent == Some(id))
        {
            return Err(ApiError::conflict(
                "agent_has_tasks",
                "tasks wait for this agent",
            ));
        }
        self.agents.remove(&id);
        for queue in self.queues.values_mut() {
            queue.members.remove(&id);
            queue.last_offered.remove(&id);
        }
        self.dirty.agents.remove(&id);
        self.dirty.deleted_agents.push(id);
        Ok(Outcome::Done)
    }

    pub(super) fn get_agent(
        &self,
        actor: &Actor,
        id: AgentId,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        Self::roles_problem(actor, STAFF)?;
        Ok(Outcome::Agent {
            agent: self.agent_view(id, now)?,
        })
    }

    pub(super) fn list_agents(
        &self,
        actor: &Actor,
        after: Option<AgentId>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        Self::roles_problem(actor, STAFF)?;
        let mut ids: Vec<AgentId> = self
            .agents
            .keys()
            .copied()
            .filter(|id| after.is_none_or(|after| *id > after))
            .collect();
        ids.sort_unstable();
        let limit = limit.clamp(1, 1000);
        let more = ids.len() > limit;
        ids.truncate(limit);
        let items = ids
            .iter()
            .map(|id| self.agent_view(*id, now))
            .collect::<ApiResult<Vec<_>>>()?;
        let next_cursor = more
            .then(|| ids.last().map(hotline_kit::rest::encode_cursor))
            .flatten();
        Ok(Outcome::Agents {
            page: Page { items, next_cursor },
        })
    }

    pub(super) fn sign_in(
        &mut self,
        actor: &Actor,
        id: AgentId,
        activity: Option<String>,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        let activity = activity.unwrap_or_else(|| READY.to_owned());
        if activity == OFFLINE {
            return Err(ApiError::invalid_field(
                "/activity",
                "signing in to offline makes no sense",
            ));
        }
        self.set_activity(actor, id, &activity, now)
    }

    pub(super) fn sign_out(
        &mut self,
        actor: &Actor,
        id: AgentId,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        let runtime = self.agent_for(actor, id)?;
        let working = runtime.tasks.iter().any(|task| {
            self.tasks
                .get(task)
                .is_some_and(|task| task.status == TaskStatus::Assigned)
        });
        if working {
            return Err(ApiError::conflict(
                "agent_busy",
                "the agent is working on a task: complete or transfer it before signing out",
            ));
        }
        // Offers still ringing go to someone else; wrap-ups end now.
        let held: Vec<_> = runtime.tasks.iter().copied().collect();
        for task in held {
            match self.tasks.get(&task).map(|task| task.status) {
                Some(TaskStatus::Reserved) => {
                    self.withdraw(task, "rejected", Some("agent signed out".into()), now)
                }
                Some(TaskStatus::Wrapping) => self.finish_wrap_up(task, now),
                _ => {}
            }
        }
        self.change_activity(id, OFFLINE, now)?;
        self.check_staffing(id, now);
        Ok(Outcome::Agent {
            agent: self.agent_view(id, now)?,
        })
    }

    pub(super) fn set_activity(
        &mut self,
        actor: &Actor,
        id: AgentId,
        activity: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        self.agent_for(actor, id)?;
        if !self.activities.contains_key(activity) {
            return Err(ApiError::invalid_field(
                "/activity",
                format!("no activity {activity}; GET /api/v1/activities lists them"),
            ));
        }
        if activity == OFFLINE {
            return self.sign_out(actor, id, now);
        }
        self.change_activity(id, activity, now)?;
        Ok(Outcome::Agent {
            agent: self.agent_view(id, now)?,
        })
    }

    /// Puts the agent in `activity` (no checks), announcing it.
    pub(super) fn change_activity(
        &mut self,
        id: AgentId,
        activity: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<()> {
        let available = self.activity_available(activity);
        let runtime = self
            .agents
            .get_mut(&id)
            .ok_or_else(|| ApiError::not_found("agent_not_found", format!("no agent {id}")))?;
        if runtime.agent.activity == activity {
            return Ok(());
        }
        let was_available = self
            .activities
            .get(&runtime.agent.activity)
            .is_some_and(|a| a.available);
        runtime.agent.activity = activity.to_owned();
        runtime.available = available;
        runtime.agent.activity_since = now;
        runtime.agent.updated_at = now;
        if available && !was_available {
            // Idle from now on, whatever came before.
            for channel in Channel::ALL {
                if runtime.load[channel].total() == 0 {
                    runtime.idle_since[channel] = now;
                }
            }
        }
        self.dirty.agents.insert(id);
        self.touched.insert(id);
        if available {
            self.try_agents.insert(id);
        }
        Ok(())
    }

    /// After `agent` signed out: queues left with nobody signed in apply their
    /// `no_agents` rule to the tasks waiting in them.
    fn check_staffing(&mut self, agent: AgentId, now: DateTime<Utc>) {
        let queues: Vec<_> = self
            .agents
            .get(&agent)
            .map(|runtime| runtime.memberships.keys().copied().collect())
            .unwrap_or_default();
        for queue in queues {
            if self.signed_in_members(queue) > 0 {
                continue;
            }
            let rule = self.queues.get(&queue).and_then(|runtime| {
                runtime
                    .queue
                    .spec
                    .overflow
                    .iter()
                    .find(|rule| rule.when == Trigger::NoAgents)
                    .cloned()
            });
            if let Some(rule) = rule {
                for task in self.tasks_in(queue) {
                    if self
                        .tasks
                        .get(&task)
                        .is_some_and(|t| t.status == TaskStatus::Pending)
                    {
                        self.overflow(task, &rule.to, "no_agents", now);
                    }
                }
            }
        }
    }

    pub(super) fn signed_in_members(&self, queue: super::QueueId) -> usize {
        self.queues.get(&queue).map_or(0, |runtime| {
            runtime
                .members
                .keys()
                .filter(|id| {
                    self.agents
                        .get(id)
                        .is_some_and(|a| a.agent.activity != OFFLINE)
                })
                .count()
        })
    }

    pub(super) fn agent_offers(
        &self,
        actor: &Actor,
        id: AgentId,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        let runtime = self.agent_for(actor, id)?;
        let tasks = runtime
            .tasks
            .iter()
            .filter_map(|task| self.tasks.get(task))
            .map(|task| self.task_view(task, now))
            .collect();
        Ok(Outcome::Tasks { tasks })
    }

    /// What the agent holds on `channel`, and how much they may.
    pub(super) fn free_capacity(&self, runtime: &AgentRuntime, channel: Channel) -> u32 {
        runtime.capacity[channel].saturating_sub(runtime.load[channel].total())
    }

    pub(super) fn load_mut(&mut self, agent: AgentId, channel: Channel) -> Option<&mut Load> {
        self.agents
            .get_mut(&agent)
            .map(|runtime| &mut runtime.load[channel])
    }

    /// The state a wallboard shows.
    fn derived_state(&self, runtime: &AgentRuntime) -> String {
        if runtime.agent.activity == OFFLINE {
            return OFFLINE.to_owned();
        }
        let (mut reserved, mut assigned, mut wrapping) = (0, 0, 0);
        for load in runtime.load.values() {
            reserved += load.reserved;
            assigned += load.assigned;
            wrapping += load.wrapping;
        }
        if assigned > 0 {
            "busy".to_owned()
        } else if reserved > 0 {
            "reserved".to_owned()
        } else if wrapping > 0 {
            "wrap_up".to_owned()
        } else {
            runtime.agent.activity.clone()
        }
    }

    /// Recomputes the agent's state; announces a change when `announce`.
    pub(super) fn refresh_state(&mut self, id: AgentId, now: DateTime<Utc>, announce: bool) {
        let Some(runtime) = self.agents.get(&id) else {
            return;
        };
        let state = self.derived_state(runtime);
        if state == runtime.state {
            return;
        }
        if let Some(runtime) = self.agents.get_mut(&id) {
            runtime.state = state;
            runtime.state_since = now;
        }
        if announce && let Ok(view) = self.agent_view(id, now) {
            self.emit(Happening {
                kind: events::AGENT_STATE_CHANGED,
                task: None,
                agent: Some(view),
                concerns: Some(id),
                timeline: None,
                ended: None,
            });
        }
    }

    /// Announces the state changes of every agent touched since the last call.
    pub(super) fn announce_states(&mut self, now: DateTime<Utc>) {
        for id in std::mem::take(&mut self.touched) {
            self.refresh_state(id, now, true);
        }
    }

    pub(super) fn agent_view(&self, id: AgentId, _now: DateTime<Utc>) -> ApiResult<AgentView> {
        let runtime = self.agent(id)?;
        let agent = &runtime.agent;
        let load = agent
            .spec
            .capacity
            .iter()
            .map(|(channel, capacity)| {
                let held = runtime.load[*channel];
                (
                    *channel,
                    ChannelLoad {
                        capacity: *capacity,
                        reserved: held.reserved,
                        assigned: held.assigned,
                        wrapping: held.wrapping,
                    },
                )
            })
            .collect();
        Ok(AgentView {
            id: agent.id,
            name: agent.spec.name.clone(),
            login: agent.spec.login.clone(),
            groups: agent.spec.groups.clone(),
            skills: agent.spec.skills.clone(),
            capacity: agent.spec.capacity.clone(),
            attributes: agent.spec.attributes.clone(),
            activity: agent.activity.clone(),
            activity_since: agent.activity_since,
            available: runtime.available,
            state: runtime.state.clone(),
            state_since: runtime.state_since,
            load,
            tasks: runtime.tasks.iter().copied().collect(),
            version: agent.version,
            created_at: agent.created_at,
            updated_at: agent.updated_at,
        })
    }
}
