//! Who gets what: the best free agent for an arriving task by its queue's
//! strategy, the best-placed waiting task for an agent freeing up.

use chrono::{DateTime, Utc};
use rand::Rng;
use uuid::Uuid;

use super::{AgentRuntime, Router};
use crate::domain::model::{AgentId, Channel, Strategy, TaskId, TaskStatus};

impl Router {
    /// Matches until no free agent can take a waiting task.
    pub(super) fn dispatch(&mut self, now: DateTime<Utc>) {
        loop {
            if let Some(agent) = self.try_agents.pop_first() {
                self.feed_agent(agent, now);
                continue;
            }
            if let Some(task) = self.try_tasks.pop_first() {
                self.place_task(task, now);
                continue;
            }
            break;
        }
    }

    fn takes_offers(&self, runtime: &AgentRuntime) -> bool {
        runtime.available
    }

    /// Offers an agent the best-placed tasks it may take, while it has room.
    fn feed_agent(&mut self, agent: AgentId, now: DateTime<Utc>) {
        for channel in Channel::ALL {
            loop {
                let Some(runtime) = self.agents.get(&agent) else {
                    return;
                };
                if !self.takes_offers(runtime) {
                    return;
                }
                if self.free_capacity(runtime, channel) == 0 {
                    break;
                }
                match self.best_task_for(runtime, channel) {
                    Some(task) => self.reserve(task, agent, now),
                    None => break,
                }
            }
        }
    }

    /// Among the agent's queues (and tasks sent to the agent alone), the
    /// best-placed waiting task on `channel` it may take.
    fn best_task_for(&self, runtime: &AgentRuntime, channel: Channel) -> Option<TaskId> {
        let agent = runtime.agent.id;
        let eligible = |id: &TaskId, min_step: Option<u32>| {
            self.tasks.get(id).is_some_and(|task| {
                task.status == TaskStatus::Pending
                    && task.channel == channel
                    && min_step.is_none_or(|step| task.step >= step)
                    && !task.declined_by.contains(&agent)
            })
        };
        let mut best: Option<(i64, TaskId)> = None;
        let mut consider = |candidate: (i64, TaskId)| {
            if best.is_none_or(|current| candidate < current) {
                best = Some(candidate);
            }
        };
        if let Some(targeted) = self.targeted.get(&agent)
            && let Some(first) = targeted.iter().find(|(_, id)| eligible(id, None))
        {
            consider(*first);
        }
        for (queue, min_step) in &runtime.memberships {
            let Some(queue) = self.queues.get(queue) else {
                continue;
            };
            if let Some(first) = queue
                .waiting
                .iter()
                .find(|(_, id)| eligible(id, Some(*min_step)))
            {
                consider(*first);
            }
        }
        best.map(|(_, id)| id)
    }

    /// Offers an arriving (or newly eligible) task to the best free agent.
    fn place_task(&mut self, id: TaskId, now: DateTime<Utc>) {
        if !self.slots.contains_key(&id) {
            return;
        }
        let today = self.today(now);
        if let Some(agent) = self.best_agent_for(id, today) {
            self.reserve(id, agent, now);
        }
    }

    fn best_agent_for(&mut self, id: TaskId, today: chrono::NaiveDate) -> Option<AgentId> {
        let task = self.tasks.get(&id)?;
        if task.status != TaskStatus::Pending {
            return None;
        }
        let queue = self.queues.get(&task.queue_id)?;
        let channel = task.channel;
        // One look-up per member: the agents a busy queue scans are many.
        let free = |agent: &AgentId| {
            self.agents.get(agent).filter(|runtime| {
                self.takes_offers(runtime)
                    && self.free_capacity(runtime, channel) > 0
                    && !task.declined_by.contains(agent)
            })
        };
        let strategy = queue.queue.spec.strategy;
        if let Some(agent) = task.target_agent {
            return free(&agent).is_some().then_some(agent);
        }
        let eligible = queue
            .members
            .iter()
            .filter(|(_, min_step)| **min_step <= task.step)
            .filter_map(|(agent, _)| Some((*agent, free(agent)?)));
        if strategy == Strategy::Random {
            let candidates: Vec<AgentId> = eligible.map(|(agent, _)| agent).collect();
            if candidates.is_empty() {
                return None;
            }
            let pick = self.rng.random_range(0..candidates.len());
            return candidates.get(pick).copied();
        }
        let skill = queue.ranking_skill.as_deref();
        let key = |(agent, runtime): (AgentId, &AgentRuntime)| -> (i64, i64, i64, Uuid) {
            let load = i64::from(runtime.load[channel].total());
            let idle = runtime.idle_since[channel].timestamp_millis();
            let today = |counter: i64| {
                if runtime.today.day == Some(today) {
                    counter
                } else {
                    0
                }
            };
            let first = match strategy {
                Strategy::LongestIdle | Strategy::Random => 0,
                Strategy::RoundRobin => queue
                    .last_offered
                    .get(&agent)
                    .map_or(i64::MIN, |offer| i64::try_from(*offer).unwrap_or(i64::MAX)),
                Strategy::FewestTasksToday => today(i64::from(runtime.today.tasks[channel])),
                Strategy::LeastTalkTime => today(runtime.today.talk_ms[channel]),
                Strategy::BestSkill => -skill
                    .and_then(|skill| runtime.agent.spec.skills.get(skill))
                    .map_or(-1, |level| i64::from(*level)),
            };
            (first, load, idle, agent)
        };
        // The agent's id is the key's last part: keys are distinct, the order total.
        eligible.map(key).min().map(|(.., agent)| agent)
    }
}
