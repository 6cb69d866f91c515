//! Live statistics, positions and estimated waits.
//!
//! The estimated wait of the task at position k in a queue whose N eligible
//! agents (weighted by their capacity on the channel) are all busy is the time
//! until k of them free up: with task times exponentially distributed around
//! the queue's recent mean h, that is k·h/N (docs/api/routing.md#estimated-wait).

use chrono::{DateTime, NaiveDate, Utc};
use hotline_kit::ApiResult;
use uuid::Uuid;

use super::{AgentRuntime, QueueRuntime, Resumable, Router, after, config::STAFF};
use crate::{
    domain::{
        command::{Actor, Outcome},
        model::{AgentId, Channel, QueueId, Task, TaskId, TaskStatus},
    },
    views::{AgentStats, QueueStats},
};

/// A final task of today (or of the resume window), as read back at restore.
#[derive(Clone, Debug, PartialEq)]
pub struct Recent {
    pub id: TaskId,
    pub queue_id: QueueId,
    pub visited: Vec<QueueId>,
    pub status: TaskStatus,
    pub channel: Channel,
    pub external_id: Option<String>,
    pub calling_number: Option<String>,
    pub agent_id: Option<AgentId>,
    pub created_at: DateTime<Utc>,
    pub rank_at: DateTime<Utc>,
    pub offered_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl Recent {
    pub fn of(task: &Task) -> Self {
        Self {
            id: task.id,
            queue_id: task.queue_id,
            visited: task.visited.clone(),
            status: task.status,
            channel: task.channel,
            external_id: task.external_id.clone(),
            calling_number: task.calling_number.clone(),
            agent_id: task.agent_id,
            created_at: task.created_at,
            rank_at: task.rank_at,
            offered_at: task.reservation.as_ref().map(|r| r.offered_at),
            answered_at: task.answered_at,
            assigned_at: task.assigned_at,
            ended_at: task.ended_at,
            completed_at: task.completed_at,
        }
    }
}

impl QueueRuntime {
    /// Starts a new day's figures when the day changed.
    pub(super) fn roll(&mut self, today: NaiveDate) {
        if self.today.day != Some(today) {
            self.today = super::QueueDay {
                day: Some(today),
                ..super::QueueDay::default()
            };
        }
    }

    pub(super) fn record_handle(&mut self, millis: i64, keep: usize) {
        self.handle_ms.push_back(millis.max(0));
        while self.handle_ms.len() > keep.max(1) {
            self.handle_ms.pop_front();
        }
    }

    /// Mean recent time per task in seconds; the configured guess before any.
    fn handle_seconds(&self) -> f64 {
        if self.handle_ms.is_empty() {
            return f64::from(self.queue.spec.expected_handle_seconds);
        }
        let total: i64 = self.handle_ms.iter().sum();
        total as f64 / self.handle_ms.len() as f64 / 1000.0
    }
}

impl AgentRuntime {
    pub(super) fn roll(&mut self, today: NaiveDate) {
        if self.today.day != Some(today) {
            self.today = super::AgentDay {
                day: Some(today),
                ..super::AgentDay::default()
            };
        }
    }
}

fn ratio(part: u32, whole: u32) -> Option<f64> {
    (whole > 0).then(|| f64::from(part) / f64::from(whole))
}

impl Router {
    /// Rebuilds today's figures, the agents' counters, recent handle times and
    /// resumable callers from final tasks read back at restore.
    pub(super) fn restore_recent(&mut self, mut recent: Vec<Recent>, now: DateTime<Utc>) {
        let today = self.today(now);
        recent.sort_by_key(|task| task.completed_at.unwrap_or(task.created_at));
        let keep = self.settings.handle_time_samples;
        for task in recent {
            if let Some(external) = &task.external_id {
                let seen = task.completed_at.unwrap_or(task.created_at);
                self.by_external.insert(external.clone(), (task.id, seen));
            }
            let of_today = self.today(task.created_at) == today;
            if of_today {
                self.count_arrival(&task, today);
            }
            if let (Some(offered), Some(done)) = (task.offered_at, task.completed_at)
                && task.status == TaskStatus::Completed
                && let Some(queue) = self.queues.get_mut(&task.queue_id)
            {
                queue.record_handle((done - offered).num_milliseconds(), keep);
            }
            if let Some(agent) = task.agent_id
                && task.status == TaskStatus::Completed
                && let Some(runtime) = self.agents.get_mut(&agent)
            {
                if let Some(done) = task.completed_at {
                    let idle = &mut runtime.idle_since[task.channel];
                    *idle = (*idle).max(done);
                }
                if of_today {
                    runtime.roll(today);
                    runtime.today.tasks[task.channel] += 1;
                    let talk = task
                        .assigned_at
                        .zip(task.ended_at)
                        .map_or(0, |(from, to)| (to - from).num_milliseconds());
                    runtime.today.talk_ms[task.channel] += talk;
                }
            }
            if task.status == TaskStatus::Abandoned
                && let (Some(number), Some(ended)) = (&task.calling_number, task.ended_at)
            {
                let until = after(ended, self.settings.resume_window);
                if until >= now {
                    self.resumable.insert(
                        number.clone(),
                        Resumable {
                            task_id: task.id,
                            queue_id: task.queue_id,
                            rank_at: task.rank_at,
                            until,
                        },
                    );
                }
            }
        }
        let active: Vec<Recent> = self.tasks.values().map(Recent::of).collect();
        for task in active {
            if self.today(task.created_at) == today {
                self.count_arrival(&task, today);
            }
        }
    }

    fn count_arrival(&mut self, task: &Recent, today: NaiveDate) {
        for queue in &task.visited {
            if let Some(runtime) = self.queues.get_mut(queue) {
                runtime.roll(today);
                runtime.today.offered += 1;
                runtime.today.overflowed += 1;
            }
        }
        let Some(runtime) = self.queues.get_mut(&task.queue_id) else {
            return;
        };
        runtime.roll(today);
        let day = &mut runtime.today;
        day.offered += 1;
        let threshold = i64::from(runtime.queue.spec.service_level_seconds) * 1000;
        if let Some(answered) = task.answered_at {
            let wait = (answered - task.created_at).num_milliseconds();
            day.answered += 1;
            day.answered_wait_ms += wait;
            if wait <= threshold {
                day.answered_within += 1;
            }
        }
        match task.status {
            TaskStatus::Abandoned => {
                day.abandoned += 1;
                let waited = task.ended_at.map_or(i64::MAX, |ended| {
                    (ended - task.created_at).num_milliseconds()
                });
                if waited <= threshold {
                    day.abandoned_within += 1;
                }
            }
            TaskStatus::Overflowed => day.overflowed += 1,
            TaskStatus::Pending
            | TaskStatus::Reserved
            | TaskStatus::Assigned
            | TaskStatus::Wrapping
            | TaskStatus::Completed
            | TaskStatus::Canceled => {}
        }
    }

    /// A pending task's place in line and estimated wait.
    pub(super) fn position_and_wait(
        &self,
        task: &Task,
        now: DateTime<Utc>,
    ) -> (Option<u32>, Option<f64>) {
        let Some(queue) = self.queues.get(&task.queue_id) else {
            return (None, None);
        };
        if let Some(at) = task.not_before
            && at > now
        {
            return (None, Some((at - now).num_milliseconds() as f64 / 1000.0));
        }
        let Some(super::Slot::Queue(_, key)) = self.slots.get(&task.id).copied() else {
            return (None, None);
        };
        let ahead = queue
            .waiting
            .range(..(key, task.id))
            .filter(|(_, id)| {
                self.tasks
                    .get(id)
                    .is_some_and(|t| t.channel == task.channel)
            })
            .count();
        let position = u32::try_from(ahead + 1).unwrap_or(u32::MAX);
        (
            Some(position),
            self.estimate(queue, task.channel, task.step, position),
        )
    }

    /// The wait of the task at `position` (1 = next), or `None` when nobody
    /// who could take it is staffed.
    fn estimate(
        &self,
        queue: &QueueRuntime,
        channel: Channel,
        step: u32,
        position: u32,
    ) -> Option<f64> {
        let (mut staffed, mut free) = (0u32, 0u32);
        for (agent, min_step) in &queue.members {
            if *min_step > step {
                continue;
            }
            let Some(runtime) = self.agents.get(agent) else {
                continue;
            };
            let capacity = runtime.capacity[channel];
            let held = runtime.load[channel].total();
            if runtime.available {
                staffed += capacity;
                free += capacity.saturating_sub(held);
            } else {
                // Busy agents on break still free a slot when their task ends.
                staffed += held.min(capacity);
            }
        }
        if staffed == 0 {
            return None;
        }
        let ahead_of_free = f64::from(position.saturating_sub(free));
        Some(ahead_of_free * queue.handle_seconds() / f64::from(staffed))
    }

    pub(super) fn queue_stats(
        &self,
        actor: &Actor,
        reference: Option<&str>,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        Self::roles_problem(actor, STAFF)?;
        let ids: Vec<QueueId> = match reference {
            Some(reference) => vec![self.resolve_queue(reference)?],
            None => {
                let mut ids: Vec<_> = self.queues.keys().copied().collect();
                ids.sort_by_key(|id| self.queues.get(id).map(|q| q.queue.spec.name.clone()));
                ids
            }
        };
        let today = self.today(now);
        let stats = ids
            .into_iter()
            .filter_map(|id| self.queues.get(&id))
            .map(|queue| self.one_queue_stats(queue, today, now))
            .collect();
        Ok(Outcome::QueueStats { stats })
    }

    fn one_queue_stats(
        &self,
        queue: &QueueRuntime,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> QueueStats {
        let day = if queue.today.day == Some(today) {
            queue.today.clone()
        } else {
            super::QueueDay::default()
        };
        let longest = queue
            .queued
            .iter()
            .filter_map(|id| self.tasks.get(id))
            .filter(|task| task.not_before.is_none_or(|at| at <= now))
            .map(|task| (now - task.created_at).num_milliseconds())
            .max()
            .unwrap_or(0);
        let mut agents = std::collections::BTreeMap::new();
        for agent in queue.members.keys() {
            if let Some(runtime) = self.agents.get(agent) {
                *agents.entry(runtime.state.clone()).or_insert(0) += 1;
            }
        }
        let held_against = day.answered + day.abandoned.saturating_sub(day.abandoned_within);
        let waiting_next = u32::try_from(queue.waiting.len() + 1).unwrap_or(u32::MAX);
        QueueStats {
            queue_id: queue.queue.id,
            queue: queue.queue.spec.name.clone(),
            day: today,
            waiting: u32::try_from(queue.queued.len()).unwrap_or(u32::MAX),
            longest_wait_seconds: longest as f64 / 1000.0,
            agents,
            offered: day.offered,
            answered: day.answered,
            answered_within_threshold: day.answered_within,
            abandoned: day.abandoned,
            abandoned_within_threshold: day.abandoned_within,
            overflowed: day.overflowed,
            service_level: ratio(day.answered_within, held_against),
            asa_seconds: (day.answered > 0)
                .then(|| day.answered_wait_ms as f64 / f64::from(day.answered) / 1000.0),
            abandon_rate: ratio(day.abandoned, day.offered),
            average_handle_seconds: queue.handle_seconds(),
            estimated_wait_seconds: self.estimate(queue, Channel::Voice, 0, waiting_next),
            service_level_seconds: queue.queue.spec.service_level_seconds,
            as_of: now,
        }
    }

    pub(super) fn agent_stats(
        &self,
        actor: &Actor,
        agent: Option<AgentId>,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        Self::roles_problem(actor, STAFF)?;
        let today = self.today(now);
        let mut ids: Vec<Uuid> = match agent {
            Some(id) => {
                self.agent(id)?;
                vec![id]
            }
            None => self.agents.keys().copied().collect(),
        };
        ids.sort_unstable();
        let stats = ids
            .into_iter()
            .filter_map(|id| self.agents.get(&id))
            .map(|runtime| {
                let of_today = runtime.today.day == Some(today);
                let tasks: u32 = if of_today {
                    runtime.today.tasks.values().sum()
                } else {
                    0
                };
                let talk: i64 = if of_today {
                    runtime.today.talk_ms.values().sum()
                } else {
                    0
                };
                AgentStats {
                    agent_id: runtime.agent.id,
                    name: runtime.agent.spec.name.clone(),
                    state: runtime.state.clone(),
                    state_since: runtime.state_since,
                    activity: runtime.agent.activity.clone(),
                    day: today,
                    tasks_today: tasks,
                    talk_seconds_today: talk as f64 / 1000.0,
                    current_tasks: u32::try_from(runtime.tasks.len()).unwrap_or(u32::MAX),
                    as_of: now,
                }
            })
            .collect();
        Ok(Outcome::AgentStats { stats })
    }
}
