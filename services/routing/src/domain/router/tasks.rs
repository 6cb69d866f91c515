//! Tasks: arrival and entry rules, offers and their answers, the end of work,
//! wrap-up, transfers, callbacks, abandons, overflow, and their deadlines.

use chrono::{DateTime, Utc};
use hotline_kit::{ApiError, ApiResult, auth::Role, timers::Timer};
use uuid::Uuid;

use super::{
    Happening, ReservationRecord, Resumable, Router, Slot, TIMER_KIND, TimelineNote, after,
    config::STAFF, seconds, timer_key,
};
use crate::{
    domain::{
        command::{Actor, AttemptResult, NewTask, Outcome, TransferTarget},
        expr::{Subject, Value},
        model::{
            AgentId, Callback, Destination, FinalOutcome, MAX_PRIORITY, QueueId, Reservation, Task,
            TaskId, TaskKind, TaskStatus, Trigger, check_name,
        },
    },
    events,
    views::TaskView,
};

/// Who feeds tasks in: the switch's adapter and other systems, and leads.
const FEEDERS: &[Role] = &[Role::Service, Role::Supervisor, Role::Admin];

/// A task as entry-rule expressions see it.
struct TaskSubject<'a>(&'a Task);

impl Subject for TaskSubject<'_> {
    fn values(&self, path: &[String]) -> Vec<Value> {
        let task = self.0;
        let text = |value: &Option<String>| value.clone().map(Value::Text).into_iter().collect();
        match path {
            [head] if head == "channel" => vec![Value::Text(task.channel.as_str().to_owned())],
            [head] if head == "kind" => vec![Value::Text(task.kind.as_str().to_owned())],
            [head] if head == "priority" => vec![Value::Number(f64::from(task.priority))],
            [head] if head == "calling_number" || head == "caller" => text(&task.calling_number),
            [head] if head == "dialled_number" || head == "dialled" => text(&task.dialled_number),
            [head, key] if head == "ivr" => task
                .ivr
                .get(key)
                .map(|value| Value::Text(value.clone()))
                .into_iter()
                .collect(),
            [head, rest @ ..] if head == "attributes" && !rest.is_empty() => {
                let mut value = task.attributes.get(&rest[0]);
                for key in &rest[1..] {
                    value = value.and_then(|v| v.get(key));
                }
                value.map(Value::from_json).unwrap_or_default()
            }
            [head, field] if head == "customer" => {
                let candidate = task
                    .customer
                    .as_ref()
                    .and_then(|pop| pop.get("candidates"))
                    .and_then(|candidates| candidates.get(0));
                match field.as_str() {
                    "known" => vec![Value::Bool(task.customer_id.is_some())],
                    other => candidate
                        .and_then(|c| c.get(other))
                        .map(Value::from_json)
                        .unwrap_or_default(),
                }
            }
            _ => Vec::new(),
        }
    }
}

fn conflict(kind: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::conflict(kind, message)
}

fn check_text(
    pointer: &str,
    value: &Option<String>,
    max: usize,
    problems: &mut Vec<hotline_kit::error::FieldError>,
) {
    if let Some(value) = value {
        if value.chars().count() > max {
            problems.push(hotline_kit::error::FieldError {
                pointer: pointer.to_owned(),
                message: format!("at most {max} characters"),
            });
        } else {
            check_name(pointer, value, problems);
        }
    }
}

fn validate(task: &NewTask) -> ApiResult<()> {
    let mut problems = Vec::new();
    check_text("/external_id", &task.external_id, 200, &mut problems);
    check_text("/queue", &task.queue, 200, &mut problems);
    check_text("/calling_number", &task.calling_number, 40, &mut problems);
    check_text("/dialled_number", &task.dialled_number, 40, &mut problems);
    check_text("/number", &task.number, 40, &mut problems);
    if !(-MAX_PRIORITY..=MAX_PRIORITY).contains(&task.priority) {
        problems.push(hotline_kit::error::FieldError {
            pointer: "/priority".into(),
            message: format!("between -{MAX_PRIORITY} and {MAX_PRIORITY}"),
        });
    }
    if task.ivr.len() > 20 {
        problems.push(hotline_kit::error::FieldError {
            pointer: "/ivr".into(),
            message: "at most 20 entries".into(),
        });
    }
    for (key, value) in &task.ivr {
        check_name(&format!("/ivr/{key}"), key, &mut problems);
        check_text(
            &format!("/ivr/{key}"),
            &Some(value.clone()),
            200,
            &mut problems,
        );
    }
    if task.attributes.len() > 50
        || serde_json::to_string(&task.attributes).is_ok_and(|text| text.len() > 16 * 1024)
    {
        problems.push(hotline_kit::error::FieldError {
            pointer: "/attributes".into(),
            message: "at most 50 attributes and 16 KiB".into(),
        });
    }
    if task.kind != TaskKind::Inbound && task.number.is_none() && task.calling_number.is_none() {
        problems.push(hotline_kit::error::FieldError {
            pointer: "/number".into(),
            message: "a callback or outbound task needs the number to call".into(),
        });
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(problems))
    }
}

impl Router {
    // ---- reading

    pub(super) fn task(&self, id: TaskId) -> ApiResult<&Task> {
        self.tasks
            .get(&id)
            .ok_or_else(|| ApiError::not_found("task_not_found", format!("no active task {id}")))
    }

    fn by_call(&self, call_id: &str) -> ApiResult<TaskId> {
        self.by_external
            .get(call_id)
            .map(|(id, _)| *id)
            .filter(|id| self.tasks.contains_key(id))
            .ok_or_else(|| {
                ApiError::not_found("call_not_found", format!("no active call {call_id}"))
            })
    }

    pub(super) fn get_task(
        &self,
        actor: &Actor,
        id: TaskId,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        Self::roles_problem(actor, STAFF)?;
        let task = self.task(id)?;
        Ok(Outcome::Task {
            task: self.task_view(task, now),
            created: false,
        })
    }

    pub(super) fn active_tasks(
        &self,
        actor: &Actor,
        queues: &[QueueId],
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        Self::roles_problem(actor, FEEDERS)?;
        let mut tasks: Vec<&Task> = self
            .tasks
            .values()
            .filter(|task| queues.is_empty() || queues.contains(&task.queue_id))
            .collect();
        tasks.sort_by_key(|task| (task.created_at, task.id));
        Ok(Outcome::Tasks {
            tasks: tasks
                .into_iter()
                .map(|task| self.task_view(task, now))
                .collect(),
        })
    }

    /// Every task not final in a queue.
    pub(super) fn tasks_in(&self, queue: QueueId) -> Vec<TaskId> {
        self.queues
            .get(&queue)
            .map(|runtime| runtime.active.iter().copied().collect())
            .unwrap_or_default()
    }

    fn outcome(&self, id: TaskId, now: DateTime<Utc>) -> Outcome {
        let task = self.tasks.get(&id).or_else(|| self.finished.get(&id));
        match task {
            Some(task) => Outcome::Task {
                task: self.task_view(task, now),
                created: false,
            },
            None => Outcome::Done,
        }
    }

    pub(super) fn task_view(&self, task: &Task, now: DateTime<Utc>) -> TaskView {
        let queue = self
            .queues
            .get(&task.queue_id)
            .map(|q| q.queue.spec.name.clone())
            .unwrap_or_default();
        let (position, estimated_wait_seconds) = if task.status == TaskStatus::Pending {
            self.position_and_wait(task, now)
        } else {
            (None, None)
        };
        TaskView::of(task, queue, position, estimated_wait_seconds)
    }

    fn announce(
        &mut self,
        kind: &'static str,
        id: TaskId,
        concerns: Option<AgentId>,
        now: DateTime<Utc>,
    ) {
        self.announce_ending(kind, id, concerns, None, now);
    }

    /// `announce`, for the end of the offer `ended`.
    fn announce_ending(
        &mut self,
        kind: &'static str,
        id: TaskId,
        concerns: Option<AgentId>,
        ended: Option<Reservation>,
        now: DateTime<Utc>,
    ) {
        let Some(task) = self.tasks.get(&id).or_else(|| self.finished.get(&id)) else {
            return;
        };
        let view = self.task_view(task, now);
        self.emit(Happening {
            kind,
            task: Some(view),
            agent: None,
            concerns,
            timeline: None,
            ended,
        });
    }

    /// A customer-timeline entry for a call with a known caller.
    fn note(&mut self, id: TaskId, summary: String, now: DateTime<Utc>) {
        let Some(task) = self.tasks.get(&id).or_else(|| self.finished.get(&id)) else {
            return;
        };
        if task.channel != crate::domain::model::Channel::Voice
            || (task.customer_id.is_none() && task.calling_number.is_none())
        {
            return;
        }
        let note = TimelineNote {
            customer_id: task.customer_id.clone(),
            phone: task
                .customer
                .as_ref()
                .and_then(|pop| pop.get("phone"))
                .and_then(|phone| phone.as_str())
                .map(str::to_owned)
                .or_else(|| task.calling_number.clone()),
            reference: task.id.to_string(),
            summary,
            occurred_at: now,
        };
        self.emit(Happening {
            kind: events::ACTIVITY_RECORDED,
            task: None,
            agent: None,
            concerns: None,
            timeline: Some(note),
            ended: None,
        });
    }

    // ---- bookkeeping

    /// Marks the task changed: a new version, written with the batch.
    fn touch(&mut self, id: TaskId, now: DateTime<Utc>) {
        if let Some(task) = self.tasks.get_mut(&id) {
            task.version += 1;
            task.updated_at = now;
        }
        self.dirty.tasks.insert(id);
        self.reschedule(id, now);
    }

    /// Changes a task's status, keeping its queue's waiting set in step.
    fn set_status(&mut self, id: TaskId, status: TaskStatus) {
        let Some(task) = self.tasks.get_mut(&id) else {
            return;
        };
        task.status = status;
        let queue = task.queue_id;
        if let Some(runtime) = self.queues.get_mut(&queue) {
            if status.is_waiting() {
                runtime.queued.insert(id);
            } else {
                runtime.queued.remove(&id);
            }
        }
    }

    fn rank_key(&self, task: &Task) -> i64 {
        let queue_priority = self
            .queues
            .get(&task.queue_id)
            .map_or(0, |runtime| runtime.queue.spec.priority);
        let aging = super::millis(self.settings.priority_aging).max(1);
        task.rank_at.timestamp_millis() - i64::from(queue_priority + task.priority) * aging
    }

    /// Puts a pending task where free agents look for work.
    fn slot(&mut self, id: TaskId, now: DateTime<Utc>) {
        self.unslot(id);
        let Some(task) = self.tasks.get(&id) else {
            return;
        };
        if task.status != TaskStatus::Pending || task.not_before.is_some_and(|at| at > now) {
            return;
        }
        let key = self.rank_key(task);
        let slot = match task.target_agent {
            Some(agent) => {
                self.targeted.entry(agent).or_default().insert((key, id));
                Slot::Agent(agent, key)
            }
            None => {
                let queue = task.queue_id;
                if let Some(runtime) = self.queues.get_mut(&queue) {
                    runtime.waiting.insert((key, id));
                }
                Slot::Queue(queue, key)
            }
        };
        self.slots.insert(id, slot);
        self.try_tasks.insert(id);
    }

    pub(super) fn unslot(&mut self, id: TaskId) {
        match self.slots.remove(&id) {
            Some(Slot::Queue(queue, key)) => {
                if let Some(runtime) = self.queues.get_mut(&queue) {
                    runtime.waiting.remove(&(key, id));
                }
            }
            Some(Slot::Agent(agent, key)) => {
                if let Some(set) = self.targeted.get_mut(&agent) {
                    set.remove(&(key, id));
                    if set.is_empty() {
                        self.targeted.remove(&agent);
                    }
                }
            }
            None => {}
        }
    }

    /// The relaxation step a task queued at `queued_at` has reached at `now`.
    fn step_at(&self, queue: QueueId, queued_at: DateTime<Utc>, now: DateTime<Utc>) -> u32 {
        let Some(runtime) = self.queues.get(&queue) else {
            return 0;
        };
        let waited = (now - queued_at).num_milliseconds();
        let passed = runtime
            .queue
            .spec
            .relaxation
            .iter()
            .filter(|step| i64::from(step.after_seconds) * 1000 <= waited)
            .count();
        u32::try_from(passed).unwrap_or(0)
    }

    /// After a queue's settings changed: the task keeps its place, with rank,
    /// step and deadlines under the new settings.
    pub(super) fn requeue_in_place(&mut self, id: TaskId, now: DateTime<Utc>) {
        let Some(task) = self.tasks.get(&id) else {
            return;
        };
        let step = self.step_at(task.queue_id, task.queued_at, now);
        if let Some(task) = self.tasks.get_mut(&id) {
            task.step = step;
        }
        self.slot(id, now);
        self.touch(id, now);
    }

    /// The next deadline of a task, if any.
    fn deadline(&self, task: &Task) -> Option<DateTime<Utc>> {
        match task.status {
            TaskStatus::Reserved => task.reservation.as_ref().map(|r| r.expires_at),
            TaskStatus::Wrapping => task.wrap_up_until,
            TaskStatus::Pending => {
                if let Some(at) = task.not_before {
                    return Some(at);
                }
                let spec = &self.queues.get(&task.queue_id)?.queue.spec;
                let step = usize::try_from(task.step).unwrap_or(usize::MAX);
                let mut due: Vec<DateTime<Utc>> = Vec::new();
                if let Some(next) = spec.relaxation.get(step) {
                    due.push(after(task.queued_at, seconds(next.after_seconds)));
                }
                if task.kind == TaskKind::Inbound {
                    for rule in &spec.overflow {
                        if let (Trigger::Wait, Some(wait)) = (rule.when, rule.after_seconds) {
                            due.push(after(task.queued_at, seconds(wait)));
                        }
                    }
                    if let Some(max) = spec.max_wait_seconds {
                        due.push(after(task.queued_at, seconds(max)));
                    }
                }
                due.into_iter().min()
            }
            TaskStatus::Assigned
            | TaskStatus::Completed
            | TaskStatus::Canceled
            | TaskStatus::Abandoned
            | TaskStatus::Overflowed => None,
        }
    }

    /// Sets (or clears) the task's one durable timer to its next deadline.
    fn reschedule(&mut self, id: TaskId, _now: DateTime<Utc>) {
        let key = timer_key(id);
        let due = self.tasks.get(&id).and_then(|task| self.deadline(task));
        let current = self.timers.get(&key).map(|timer| timer.due_at);
        if due == current {
            return;
        }
        match due {
            Some(due_at) => self.timers.set(Timer {
                key,
                kind: TIMER_KIND.to_owned(),
                due_at,
                payload: String::new(),
            }),
            None => {
                self.timers.remove(&key);
            }
        }
        self.dirty.timers.insert(id);
    }

    /// Rebuilds the in-memory indexes of a task read back from the database.
    pub(super) fn install_task(&mut self, task: Task, now: DateTime<Utc>) {
        let id = task.id;
        if let Some(external) = &task.external_id {
            self.by_external
                .insert(external.clone(), (id, task.updated_at));
        }
        if let Some(runtime) = self.queues.get_mut(&task.queue_id) {
            runtime.active.insert(id);
            if task.status.is_waiting() {
                runtime.queued.insert(id);
            }
        }
        let holder = match task.status {
            TaskStatus::Reserved => task.reservation.as_ref().map(|r| r.agent_id),
            TaskStatus::Assigned | TaskStatus::Wrapping => task.agent_id,
            TaskStatus::Pending
            | TaskStatus::Completed
            | TaskStatus::Canceled
            | TaskStatus::Abandoned
            | TaskStatus::Overflowed => None,
        };
        if let (Some(agent), Some(runtime)) = (holder, holder.and_then(|a| self.agents.get_mut(&a)))
        {
            let load = &mut runtime.load[task.channel];
            match task.status {
                TaskStatus::Reserved => load.reserved += 1,
                TaskStatus::Assigned => load.assigned += 1,
                TaskStatus::Wrapping => load.wrapping += 1,
                TaskStatus::Pending
                | TaskStatus::Completed
                | TaskStatus::Canceled
                | TaskStatus::Abandoned
                | TaskStatus::Overflowed => {}
            }
            runtime.tasks.insert(id);
            let _ = agent;
        }
        if let (TaskStatus::Reserved, Some(reservation)) = (task.status, &task.reservation) {
            self.reservations.insert(reservation.id, id);
        }
        self.tasks.insert(id, task);
        self.slot(id, now);
        // A deadline missing from the timer table (written by an older
        // version, or lost with a crash between batches) is set again.
        let key = timer_key(id);
        if self.timers.get(&key).is_none() {
            self.reschedule(id, now);
        }
    }

    // ---- arrival

    pub(super) fn create_task(
        &mut self,
        actor: &Actor,
        new: NewTask,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        Self::roles_problem(actor, FEEDERS)?;
        validate(&new)?;
        if let Some(external) = &new.external_id
            && let Some((existing, _)) = self.by_external.get(external).copied()
        {
            return match self
                .tasks
                .get(&existing)
                .or_else(|| self.finished.get(&existing))
            {
                Some(task) => Ok(Outcome::Task {
                    task: self.task_view(task, now),
                    created: false,
                }),
                // Final and written: the caller reads it back from the database.
                None => Err(ApiError::conflict(
                    "task_exists",
                    format!("task {existing} has this external id"),
                )
                .with_extension("task_id", existing.to_string())),
            };
        }
        if let Some(agent) = new.agent_id {
            self.agent(agent)?;
        }
        let mut task = Task {
            id: Uuid::now_v7(),
            external_id: new.external_id.clone(),
            kind: new.kind,
            channel: new.channel,
            queue_id: Uuid::nil(),
            status: TaskStatus::Pending,
            priority: new.priority,
            attributes: new.attributes,
            calling_number: new.calling_number,
            dialled_number: new.dialled_number,
            ivr: new.ivr,
            customer: new.customer,
            customer_id: new.customer_id,
            created_at: now,
            queued_at: now,
            rank_at: now,
            step: 0,
            reservation: None,
            first_offered_at: None,
            agent_id: None,
            answered_at: None,
            assigned_at: None,
            ended_at: None,
            wrap_up_until: None,
            completed_at: None,
            outcome: None,
            declined_by: Vec::new(),
            visited: Vec::new(),
            callback: None,
            not_before: None,
            resumed_from: None,
            target_agent: new.agent_id,
            version: 1,
            updated_at: now,
        };
        if task.kind != TaskKind::Inbound {
            task.callback = new
                .number
                .clone()
                .or_else(|| task.calling_number.clone())
                .map(|number| Callback {
                    number,
                    failed_attempts: 0,
                    requested_at: now,
                });
        }
        let (queue, boost) = match &new.queue {
            Some(reference) => (self.resolve_queue(reference)?, 0),
            None => self.route_by_rules(&task)?,
        };
        task.queue_id = queue;
        task.priority = (task.priority + boost).clamp(-MAX_PRIORITY, MAX_PRIORITY);
        if let Some(number) = task.calling_number.clone()
            && let Some(previous) = self.resumable.remove(&number)
        {
            if previous.until >= now && previous.queue_id == queue {
                task.rank_at = previous.rank_at;
                task.resumed_from = Some(previous.task_id);
            } else if previous.until >= now {
                self.resumable.insert(number, previous);
            }
        }
        let id = task.id;
        if let Some(external) = &task.external_id {
            self.by_external.insert(external.clone(), (id, now));
        }
        self.tasks.insert(id, task);
        self.dirty.tasks.insert(id);
        self.announce(events::TASK_CREATED, id, None, now);
        let queue_name = self
            .queues
            .get(&queue)
            .map(|q| q.queue.spec.name.clone())
            .unwrap_or_default();
        self.note(id, format!("inbound call queued in {queue_name}"), now);
        self.enter_queue(id, now);
        // Matched now, so the answer shows the offer if an agent is free.
        self.dispatch(now);
        let view = self
            .tasks
            .get(&id)
            .or_else(|| self.finished.get(&id))
            .map(|task| self.task_view(task, now))
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("task {id} vanished")))?;
        Ok(Outcome::Task {
            task: view,
            created: true,
        })
    }

    fn route_by_rules(&self, task: &Task) -> ApiResult<(QueueId, i32)> {
        let subject = TaskSubject(task);
        for (rule, when) in &self.rules {
            if when.matches(&subject)
                && let Some(queue) = self.queue_names.get(&rule.queue)
            {
                return Ok((*queue, rule.priority));
            }
        }
        Err(ApiError::invalid_field(
            "/queue",
            "no entry rule matches this task; name a queue or add a rule (PUT /api/v1/entry-rules)",
        ))
    }

    /// The task enters its (new) queue: opening hours, size and staffing are
    /// checked, then it waits for an agent.
    fn enter_queue(&mut self, id: TaskId, now: DateTime<Utc>) {
        let Some(task) = self.tasks.get(&id) else {
            return;
        };
        let queue = task.queue_id;
        let inbound = task.kind == TaskKind::Inbound;
        let zone = self.settings.time_zone;
        let today = self.today(now);
        let waiting = self.queues.get(&queue).map_or(0, |q| q.queued.len());
        // Counting who is signed in costs a pass over the members: only for a
        // queue with a rule for nobody being there.
        let staffed = self.queues.get(&queue).is_some_and(|q| {
            !q.queue
                .spec
                .overflow
                .iter()
                .any(|rule| rule.when == Trigger::NoAgents)
        }) || self.signed_in_members(queue) > 0;
        let Some(runtime) = self.queues.get_mut(&queue) else {
            return;
        };
        runtime.active.insert(id);
        runtime.roll(today);
        runtime.today.offered += 1;
        let spec = runtime.queue.spec.clone();
        let rule_for = |trigger: Trigger| {
            spec.overflow
                .iter()
                .find(|rule| rule.when == trigger)
                .cloned()
        };
        if inbound {
            let closed = spec
                .business_hours
                .as_ref()
                .is_some_and(|hours| !hours.is_open(now, zone));
            let full = spec.max_size.is_some_and(|max| waiting >= max as usize);
            for (holds, trigger, otherwise) in [
                (closed, Trigger::Closed, Some("closed")),
                (full, Trigger::Full, Some("queue_full")),
                (!staffed, Trigger::NoAgents, None),
            ] {
                if !holds {
                    continue;
                }
                match (rule_for(trigger), otherwise) {
                    (Some(rule), _) => {
                        self.set_status(id, TaskStatus::Pending);
                        self.overflow(id, &rule.to, trigger_reason(trigger), now);
                        return;
                    }
                    (None, Some(outcome)) => {
                        self.set_status(id, TaskStatus::Pending);
                        self.finalize(id, TaskStatus::Overflowed, Some(outcome.to_owned()), now);
                        return;
                    }
                    (None, None) => {}
                }
            }
        }
        self.set_status(id, TaskStatus::Pending);
        let step = self.step_at(queue, now, now);
        if let Some(task) = self.tasks.get_mut(&id) {
            task.step = step;
        }
        self.slot(id, now);
        self.reschedule(id, now);
    }

    /// Moves a pending task on to `to`.
    pub(super) fn overflow(
        &mut self,
        id: TaskId,
        to: &Destination,
        reason: &str,
        now: DateTime<Utc>,
    ) {
        let Some(task) = self.tasks.get(&id) else {
            return;
        };
        let from = task.queue_id;
        let today = self.today(now);
        if let Some(runtime) = self.queues.get_mut(&from) {
            runtime.roll(today);
            runtime.today.overflowed += 1;
        }
        match to {
            Destination::Queue(name) => {
                let target = self.queue_names.get(name).copied();
                let looped =
                    target.is_none_or(|target| target == from || task.visited.contains(&target));
                match target {
                    Some(target) if !looped => {
                        self.unslot(id);
                        self.move_task(id, target, now);
                        if let Some(task) = self.tasks.get_mut(&id) {
                            task.visited.push(from);
                            task.declined_by.clear();
                            task.outcome = Some(format!("overflowed: {reason}"));
                        }
                        self.touch(id, now);
                        self.announce(events::TASK_OVERFLOWED, id, None, now);
                        if let Some(task) = self.tasks.get_mut(&id) {
                            task.outcome = None;
                        }
                        self.enter_queue(id, now);
                    }
                    _ => self.finalize(
                        id,
                        TaskStatus::Overflowed,
                        Some("overflow_loop".into()),
                        now,
                    ),
                }
            }
            Destination::Outcome(FinalOutcome::Callback) => {
                let number = task.calling_number.clone();
                match number {
                    Some(number) => {
                        self.make_callback(id, number, now);
                        self.announce(events::TASK_CALLBACK_REQUESTED, id, None, now);
                    }
                    None => self.finalize(
                        id,
                        TaskStatus::Overflowed,
                        Some(FinalOutcome::Voicemail.as_str().to_owned()),
                        now,
                    ),
                }
            }
            Destination::Outcome(outcome) => {
                self.finalize(
                    id,
                    TaskStatus::Overflowed,
                    Some(outcome.as_str().to_owned()),
                    now,
                );
            }
        }
    }

    /// Moves a task to another queue's books (it waits there from now).
    fn move_task(&mut self, id: TaskId, target: QueueId, now: DateTime<Utc>) {
        let Some(task) = self.tasks.get_mut(&id) else {
            return;
        };
        let from = task.queue_id;
        task.queue_id = target;
        task.queued_at = now;
        task.step = 0;
        if let Some(runtime) = self.queues.get_mut(&from) {
            runtime.active.remove(&id);
            runtime.queued.remove(&id);
        }
        if let Some(runtime) = self.queues.get_mut(&target) {
            runtime.active.insert(id);
        }
    }

    fn make_callback(&mut self, id: TaskId, number: String, now: DateTime<Utc>) {
        if let Some(task) = self.tasks.get_mut(&id) {
            task.kind = TaskKind::Callback;
            task.callback = Some(Callback {
                number,
                failed_attempts: 0,
                requested_at: now,
            });
        }
        self.touch(id, now);
        self.slot(id, now);
    }

    /// Ends a task for good.
    pub(super) fn finalize(
        &mut self,
        id: TaskId,
        status: TaskStatus,
        outcome: Option<String>,
        now: DateTime<Utc>,
    ) {
        self.unslot(id);
        let ringing = self
            .tasks
            .get(&id)
            .filter(|t| t.status == TaskStatus::Reserved)
            .and_then(|t| t.reservation.clone());
        if let Some(reservation) = &ringing {
            self.end_reservation(id, reservation, "withdrawn", outcome.clone(), now);
        }
        self.set_status(id, status);
        if let Some(reservation) = ringing {
            let agent = reservation.agent_id;
            self.announce_ending(
                events::TASK_WITHDRAWN,
                id,
                Some(agent),
                Some(reservation),
                now,
            );
        }
        if let Some(task) = self.tasks.get_mut(&id) {
            task.outcome = outcome.or(task.outcome.take());
            task.completed_at.get_or_insert(now);
            if status != TaskStatus::Completed {
                task.ended_at.get_or_insert(now);
            }
        }
        self.touch(id, now);
        let Some(task) = self.tasks.remove(&id) else {
            return;
        };
        if let Some(runtime) = self.queues.get_mut(&task.queue_id) {
            runtime.active.remove(&id);
            runtime.queued.remove(&id);
        }
        let kind = match status {
            TaskStatus::Completed => events::TASK_COMPLETED,
            TaskStatus::Canceled => events::TASK_CANCELED,
            TaskStatus::Abandoned => events::TASK_ABANDONED,
            TaskStatus::Overflowed => events::TASK_OVERFLOWED,
            TaskStatus::Pending
            | TaskStatus::Reserved
            | TaskStatus::Assigned
            | TaskStatus::Wrapping => events::TASK_UPDATED,
        };
        let concerns = task.agent_id;
        let summary = match (status, &task.outcome) {
            (TaskStatus::Completed, _) => {
                let talked = task
                    .assigned_at
                    .zip(task.ended_at.or(task.completed_at))
                    .map_or(0, |(from, to)| (to - from).num_seconds());
                format!(
                    "call handled, {} min {} s with an agent",
                    talked / 60,
                    talked % 60
                )
            }
            (TaskStatus::Abandoned, _) => format!(
                "caller hung up after waiting {} s",
                (now - task.created_at).num_seconds()
            ),
            (_, Some(outcome)) => format!("call ended: {outcome}"),
            (_, None) => format!("call {}", status.as_str()),
        };
        self.finished.insert(id, task);
        self.announce(kind, id, concerns, now);
        self.note(id, summary, now);
    }

    // ---- offers

    /// Offers a pending task to an agent.
    pub(super) fn reserve(&mut self, id: TaskId, agent: AgentId, now: DateTime<Utc>) {
        let Some(task) = self.tasks.get(&id) else {
            return;
        };
        let timeout = self
            .queues
            .get(&task.queue_id)
            .and_then(|q| q.queue.spec.offer_timeout_seconds)
            .map_or(self.settings.offer_timeout, seconds);
        let channel = task.channel;
        let queue = task.queue_id;
        let reservation = Reservation {
            id: Uuid::now_v7(),
            agent_id: agent,
            offered_at: now,
            expires_at: after(now, timeout),
        };
        self.unslot(id);
        self.set_status(id, TaskStatus::Reserved);
        if let Some(task) = self.tasks.get_mut(&id) {
            task.reservation = Some(reservation.clone());
            task.first_offered_at.get_or_insert(now);
        }
        if let Some(load) = self.load_mut(agent, channel) {
            load.reserved += 1;
        }
        if let Some(runtime) = self.agents.get_mut(&agent) {
            runtime.tasks.insert(id);
        }
        self.offers += 1;
        if let Some(runtime) = self.queues.get_mut(&queue) {
            runtime.last_offered.insert(agent, self.offers);
        }
        self.reservations.insert(reservation.id, id);
        self.reservation_records.push(ReservationRecord {
            id: reservation.id,
            task_id: id,
            agent_id: agent,
            status: "offered",
            offered_at: reservation.offered_at,
            expires_at: reservation.expires_at,
            responded_at: None,
            reason: None,
        });
        self.touched.insert(agent);
        self.touch(id, now);
        self.announce(events::TASK_RESERVED, id, Some(agent), now);
    }

    /// Closes a reservation (not the task): the agent's slot frees up.
    fn end_reservation(
        &mut self,
        id: TaskId,
        reservation: &Reservation,
        status: &'static str,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) {
        let channel = self.tasks.get(&id).map(|t| t.channel);
        if let Some(channel) = channel
            && let Some(load) = self.load_mut(reservation.agent_id, channel)
        {
            load.reserved = load.reserved.saturating_sub(1);
        }
        if let Some(runtime) = self.agents.get_mut(&reservation.agent_id) {
            runtime.tasks.remove(&id);
        }
        self.reservations.remove(&reservation.id);
        self.past_reservations
            .insert(reservation.id, (reservation.agent_id, status));
        self.reservation_records.push(ReservationRecord {
            id: reservation.id,
            task_id: id,
            agent_id: reservation.agent_id,
            status,
            offered_at: reservation.offered_at,
            expires_at: reservation.expires_at,
            responded_at: Some(now),
            reason,
        });
        if let Some(task) = self.tasks.get_mut(&id) {
            task.reservation = None;
        }
        self.touched.insert(reservation.agent_id);
        self.try_agents.insert(reservation.agent_id);
    }

    /// Takes an offer back; the task waits again (and is offered to the next agent).
    pub(super) fn withdraw(
        &mut self,
        id: TaskId,
        status: &'static str,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) {
        let Some(reservation) = self.tasks.get(&id).and_then(|t| t.reservation.clone()) else {
            return;
        };
        self.end_reservation(id, &reservation, status, reason, now);
        let Some(task) = self.tasks.get(&id) else {
            return;
        };
        let step = self.step_at(task.queue_id, task.queued_at, now);
        if let Some(task) = self.tasks.get_mut(&id) {
            task.step = step;
            if status == "rejected" {
                task.declined_by.push(reservation.agent_id);
            }
            if task.target_agent == Some(reservation.agent_id) {
                // A transfer the agent did not take goes back to the queue.
                task.target_agent = None;
            }
        }
        self.set_status(id, TaskStatus::Pending);
        self.slot(id, now);
        self.touch(id, now);
        let kind = match status {
            "rejected" => events::TASK_REJECTED,
            "timed_out" => events::TASK_TIMED_OUT,
            _ => events::TASK_WITHDRAWN,
        };
        let agent = reservation.agent_id;
        self.announce_ending(kind, id, Some(agent), Some(reservation.clone()), now);
    }

    /// The reservation `reservation`, if the caller may answer it.
    fn live_reservation(&self, actor: &Actor, reservation: Uuid) -> ApiResult<TaskId> {
        let Some(task) = self.reservations.get(&reservation).copied() else {
            if let Some((agent, how)) = self.past_reservations.get(&reservation) {
                let login = self
                    .agents
                    .get(agent)
                    .and_then(|a| a.agent.spec.login.as_deref());
                if !actor.may_act_for(login) {
                    return Err(ApiError::forbidden("this offer was made to another agent"));
                }
                return Err(conflict(
                    "reservation_not_pending",
                    format!(
                        "this offer is no longer open: it was {}",
                        how.replace('_', " ")
                    ),
                ));
            }
            return Err(ApiError::not_found(
                "reservation_not_found",
                format!("no open offer {reservation}"),
            ));
        };
        let agent = self
            .tasks
            .get(&task)
            .and_then(|t| t.reservation.as_ref())
            .map(|r| r.agent_id);
        let login = agent
            .and_then(|agent| self.agents.get(&agent))
            .and_then(|a| a.agent.spec.login.as_deref());
        if !actor.may_act_for(login) {
            return Err(ApiError::forbidden("this offer was made to another agent"));
        }
        Ok(task)
    }

    pub(super) fn accept(
        &mut self,
        actor: &Actor,
        reservation: Uuid,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        let id = self.live_reservation(actor, reservation)?;
        self.assign(id, now);
        Ok(self.outcome(id, now))
    }

    pub(super) fn reject(
        &mut self,
        actor: &Actor,
        reservation: Uuid,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        let id = self.live_reservation(actor, reservation)?;
        if let Some(reason) = &reason {
            let mut problems = Vec::new();
            check_text("/reason", &Some(reason.clone()), 500, &mut problems);
            if !problems.is_empty() {
                return Err(ApiError::invalid(problems));
            }
        }
        self.withdraw(id, "rejected", reason, now);
        Ok(self.outcome(id, now))
    }

    /// The reserved agent takes the task.
    fn assign(&mut self, id: TaskId, now: DateTime<Utc>) {
        let Some(task) = self.tasks.get(&id) else {
            return;
        };
        let Some(reservation) = task.reservation.clone() else {
            return;
        };
        let (channel, queue, created_at, first_answer) = (
            task.channel,
            task.queue_id,
            task.created_at,
            task.answered_at.is_none(),
        );
        let agent = reservation.agent_id;
        if let Some(load) = self.load_mut(agent, channel) {
            load.reserved = load.reserved.saturating_sub(1);
            load.assigned += 1;
        }
        self.reservations.remove(&reservation.id);
        self.past_reservations
            .insert(reservation.id, (agent, "accepted"));
        self.reservation_records.push(ReservationRecord {
            id: reservation.id,
            task_id: id,
            agent_id: agent,
            status: "accepted",
            offered_at: reservation.offered_at,
            expires_at: reservation.expires_at,
            responded_at: Some(now),
            reason: None,
        });
        self.set_status(id, TaskStatus::Assigned);
        if let Some(task) = self.tasks.get_mut(&id) {
            task.agent_id = Some(agent);
            task.assigned_at = Some(now);
            task.answered_at.get_or_insert(now);
            task.target_agent = None;
        }
        if first_answer {
            let today = self.today(now);
            if let Some(runtime) = self.queues.get_mut(&queue) {
                runtime.roll(today);
                let wait = (now - created_at).num_milliseconds();
                runtime.today.answered += 1;
                runtime.today.answered_wait_ms += wait;
                if wait <= i64::from(runtime.queue.spec.service_level_seconds) * 1000 {
                    runtime.today.answered_within += 1;
                }
            }
        }
        self.touched.insert(agent);
        self.touch(id, now);
        self.announce(events::TASK_ASSIGNED, id, Some(agent), now);
    }

    /// The task's agent stops holding it: counted in their day, their slot freed.
    fn release_agent(&mut self, id: TaskId, now: DateTime<Utc>) {
        let Some(task) = self.tasks.get(&id) else {
            return;
        };
        let (Some(agent), status, channel) = (task.agent_id, task.status, task.channel) else {
            return;
        };
        let talk_ms = task.assigned_at.map_or(0, |at| {
            (task.ended_at.unwrap_or(now) - at).num_milliseconds()
        });
        let offered_at = task.reservation.as_ref().map(|r| r.offered_at);
        let queue = task.queue_id;
        let today = self.today(now);
        if let Some(runtime) = self.agents.get_mut(&agent) {
            let load = &mut runtime.load[channel];
            match status {
                TaskStatus::Assigned => load.assigned = load.assigned.saturating_sub(1),
                TaskStatus::Wrapping => load.wrapping = load.wrapping.saturating_sub(1),
                TaskStatus::Pending
                | TaskStatus::Reserved
                | TaskStatus::Completed
                | TaskStatus::Canceled
                | TaskStatus::Abandoned
                | TaskStatus::Overflowed => {}
            }
            if load.total() == 0 {
                runtime.idle_since[channel] = now;
            }
            runtime.tasks.remove(&id);
            runtime.roll(today);
            runtime.today.tasks[channel] += 1;
            runtime.today.talk_ms[channel] += talk_ms;
        }
        if let (Some(offered_at), Some(runtime)) = (offered_at, self.queues.get_mut(&queue)) {
            runtime.record_handle(
                (now - offered_at).num_milliseconds(),
                self.settings.handle_time_samples,
            );
        }
        self.touched.insert(agent);
        self.try_agents.insert(agent);
    }

    // ---- the end of work

    fn held_by(&self, actor: &Actor, id: TaskId) -> ApiResult<&Task> {
        let task = self.task(id)?;
        let login = task
            .agent_id
            .and_then(|agent| self.agents.get(&agent))
            .and_then(|a| a.agent.spec.login.as_deref());
        if actor.may_act_for(login) {
            Ok(task)
        } else {
            Err(ApiError::forbidden("this task is another agent's"))
        }
    }

    pub(super) fn complete_task(
        &mut self,
        actor: &Actor,
        id: TaskId,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        let task = self.held_by(actor, id)?;
        match task.status {
            TaskStatus::Assigned => self.end_work(id, now),
            TaskStatus::Wrapping => self.finish_wrap_up(id, now),
            TaskStatus::Pending | TaskStatus::Reserved => {
                return Err(conflict(
                    "task_not_assigned",
                    "nobody works on this task yet: cancel it instead",
                ));
            }
            TaskStatus::Completed
            | TaskStatus::Canceled
            | TaskStatus::Abandoned
            | TaskStatus::Overflowed => {}
        }
        Ok(self.outcome(id, now))
    }

    /// The work ends: wrap-up begins (or the task completes without one).
    fn end_work(&mut self, id: TaskId, now: DateTime<Utc>) {
        let Some(task) = self.tasks.get(&id) else {
            return;
        };
        let wrap_up = self
            .queues
            .get(&task.queue_id)
            .map_or(0, |q| q.queue.spec.wrap_up_seconds);
        let (agent, channel) = (task.agent_id, task.channel);
        if let Some(task) = self.tasks.get_mut(&id) {
            task.ended_at = Some(now);
        }
        if wrap_up == 0 {
            self.release_agent(id, now);
            self.finalize(id, TaskStatus::Completed, None, now);
            return;
        }
        if let Some(load) = agent.and_then(|agent| self.load_mut(agent, channel)) {
            load.assigned = load.assigned.saturating_sub(1);
            load.wrapping += 1;
        }
        self.set_status(id, TaskStatus::Wrapping);
        if let Some(task) = self.tasks.get_mut(&id) {
            task.wrap_up_until = Some(after(now, seconds(wrap_up)));
        }
        if let Some(agent) = agent {
            self.touched.insert(agent);
        }
        self.touch(id, now);
        self.announce(events::TASK_ENDED, id, agent, now);
    }

    pub(super) fn finish_wrap_up(&mut self, id: TaskId, now: DateTime<Utc>) {
        if let Some(task) = self.tasks.get_mut(&id) {
            task.wrap_up_until = Some(now);
        }
        self.release_agent(id, now);
        self.finalize(id, TaskStatus::Completed, None, now);
    }

    pub(super) fn end_wrap_up(
        &mut self,
        actor: &Actor,
        id: TaskId,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        let task = self.held_by(actor, id)?;
        if task.status != TaskStatus::Wrapping {
            return Err(conflict("task_not_wrapping", "the task is not in wrap-up"));
        }
        self.finish_wrap_up(id, now);
        Ok(self.outcome(id, now))
    }

    pub(super) fn cancel_task(
        &mut self,
        actor: &Actor,
        id: TaskId,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        Self::roles_problem(actor, FEEDERS)?;
        let task = self.task(id)?;
        if !task.status.is_waiting() {
            return Err(conflict(
                "task_in_progress",
                "an agent works on this task: complete or transfer it instead",
            ));
        }
        if let Some(reason) = &reason {
            let mut problems = Vec::new();
            check_text("/reason", &Some(reason.clone()), 500, &mut problems);
            if !problems.is_empty() {
                return Err(ApiError::invalid(problems));
            }
        }
        self.finalize(id, TaskStatus::Canceled, reason, now);
        Ok(self.outcome(id, now))
    }

    pub(super) fn transfer_task(
        &mut self,
        actor: &Actor,
        id: TaskId,
        to: TransferTarget,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        let task = self.held_by(actor, id)?;
        if task.status != TaskStatus::Assigned {
            return Err(conflict(
                "task_not_assigned",
                "only a task an agent works on can be transferred",
            ));
        }
        let current = task.agent_id;
        let target_queue = match &to {
            TransferTarget::Queue(reference) => Some(self.resolve_queue(reference)?),
            TransferTarget::Agent(agent) => {
                self.agent(*agent)?;
                if Some(*agent) == current {
                    return Err(ApiError::invalid_field(
                        "/to/agent",
                        "the task is this agent's already",
                    ));
                }
                None
            }
        };
        self.release_agent(id, now);
        if let Some(task) = self.tasks.get_mut(&id) {
            task.agent_id = None;
            task.assigned_at = None;
            task.declined_by.clear();
            task.target_agent = match to {
                TransferTarget::Agent(agent) => Some(agent),
                TransferTarget::Queue(_) => None,
            };
        }
        if let Some(queue) = target_queue
            && self.tasks.get(&id).is_some_and(|t| t.queue_id != queue)
        {
            self.move_task(id, queue, now);
        } else if let Some(task) = self.tasks.get_mut(&id) {
            task.queued_at = now;
        }
        self.set_status(id, TaskStatus::Pending);
        self.touch(id, now);
        self.slot(id, now);
        self.announce(events::TASK_TRANSFERRED, id, current, now);
        Ok(self.outcome(id, now))
    }

    pub(super) fn request_callback(
        &mut self,
        actor: &Actor,
        id: TaskId,
        number: Option<String>,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        Self::roles_problem(actor, FEEDERS)?;
        let task = self.task(id)?;
        if !task.status.is_waiting() || task.kind != TaskKind::Inbound {
            return Err(conflict(
                "task_not_waiting",
                "only a caller still waiting can ask to be called back",
            ));
        }
        let number = match number.or_else(|| task.calling_number.clone()) {
            Some(number) => number,
            None => return Err(ApiError::invalid_field("/number", "no number to call back")),
        };
        let mut problems = Vec::new();
        check_text("/number", &Some(number.clone()), 40, &mut problems);
        if !problems.is_empty() {
            return Err(ApiError::invalid(problems));
        }
        if self
            .tasks
            .get(&id)
            .is_some_and(|t| t.status == TaskStatus::Reserved)
        {
            self.withdraw(
                id,
                "withdrawn",
                Some("caller asked for a callback".into()),
                now,
            );
        }
        self.make_callback(id, number, now);
        self.announce(events::TASK_CALLBACK_REQUESTED, id, None, now);
        Ok(self.outcome(id, now))
    }

    pub(super) fn report_attempt(
        &mut self,
        actor: &Actor,
        id: TaskId,
        result: AttemptResult,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        let task = self.held_by(actor, id)?;
        if task.status != TaskStatus::Assigned || task.callback.is_none() {
            return Err(conflict(
                "not_dialling",
                "attempts are reported for callbacks and outbound tasks an agent has accepted",
            ));
        }
        match result {
            AttemptResult::Connected => {}
            AttemptResult::WrongNumber => {
                self.release_agent(id, now);
                self.finalize(id, TaskStatus::Completed, Some("wrong_number".into()), now);
            }
            AttemptResult::NoAnswer | AttemptResult::Busy => {
                let failed = task.callback.as_ref().map_or(0, |c| c.failed_attempts) + 1;
                let retry = self
                    .settings
                    .callback_retry
                    .get(usize::try_from(failed - 1).unwrap_or(usize::MAX))
                    .copied();
                self.release_agent(id, now);
                match retry {
                    Some(delay) => {
                        if let Some(task) = self.tasks.get_mut(&id) {
                            if let Some(callback) = &mut task.callback {
                                callback.failed_attempts = failed;
                            }
                            task.agent_id = None;
                            task.assigned_at = None;
                            task.reservation = None;
                            task.declined_by.clear();
                            task.not_before = Some(after(now, delay));
                        }
                        self.set_status(id, TaskStatus::Pending);
                        self.touch(id, now);
                        self.announce(events::TASK_REQUEUED, id, None, now);
                    }
                    None => {
                        if let Some(callback) =
                            self.tasks.get_mut(&id).and_then(|t| t.callback.as_mut())
                        {
                            callback.failed_attempts = failed;
                        }
                        self.finalize(id, TaskStatus::Completed, Some("unreachable".into()), now);
                    }
                }
            }
        }
        Ok(self.outcome(id, now))
    }

    // ---- the switch (CTI)

    pub(super) fn call_answered(
        &mut self,
        actor: &Actor,
        call_id: &str,
        agent: Option<AgentId>,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        Self::roles_problem(actor, FEEDERS)?;
        let id = self.by_call(call_id)?;
        let task = self.task(id)?;
        let reserved_for = task.reservation.as_ref().map(|r| r.agent_id);
        match (task.status, agent) {
            (TaskStatus::Assigned | TaskStatus::Wrapping, _) => {}
            (TaskStatus::Reserved, None) => self.assign(id, now),
            (TaskStatus::Reserved, Some(agent)) if Some(agent) == reserved_for => {
                self.assign(id, now)
            }
            (TaskStatus::Reserved | TaskStatus::Pending, Some(agent)) => {
                // Someone else picked the call up at the switch: they have it.
                let channel = task.channel;
                let runtime = self.agent(agent)?;
                if self.free_capacity(runtime, channel) == 0 {
                    return Err(conflict(
                        "agent_at_capacity",
                        "that agent holds all the tasks they may",
                    ));
                }
                if task.status == TaskStatus::Reserved {
                    self.withdraw(
                        id,
                        "withdrawn",
                        Some("answered by another agent".into()),
                        now,
                    );
                }
                self.unslot(id);
                self.reserve(id, agent, now);
                self.assign(id, now);
            }
            (TaskStatus::Pending, None) => {
                return Err(conflict(
                    "call_not_offered",
                    "the call is not offered to anyone; name the agent who answered",
                ));
            }
            (
                TaskStatus::Completed
                | TaskStatus::Canceled
                | TaskStatus::Abandoned
                | TaskStatus::Overflowed,
                _,
            ) => {}
        }
        Ok(self.outcome(id, now))
    }

    pub(super) fn call_ended(
        &mut self,
        actor: &Actor,
        call_id: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        Self::roles_problem(actor, FEEDERS)?;
        let id = self.by_call(call_id)?;
        let task = self.task(id)?;
        match task.status {
            TaskStatus::Assigned => self.end_work(id, now),
            // A caller waiting for a callback has hung up on purpose.
            TaskStatus::Pending | TaskStatus::Reserved if task.kind == TaskKind::Inbound => {
                self.abandon(id, now)
            }
            TaskStatus::Pending
            | TaskStatus::Reserved
            | TaskStatus::Wrapping
            | TaskStatus::Completed
            | TaskStatus::Canceled
            | TaskStatus::Abandoned
            | TaskStatus::Overflowed => {}
        }
        Ok(self.outcome(id, now))
    }

    pub(super) fn call_abandoned(
        &mut self,
        actor: &Actor,
        call_id: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<Outcome> {
        Self::roles_problem(actor, FEEDERS)?;
        let id = self.by_call(call_id)?;
        let task = self.task(id)?;
        match task.status {
            TaskStatus::Pending | TaskStatus::Reserved if task.kind == TaskKind::Inbound => {
                self.abandon(id, now)
            }
            TaskStatus::Assigned => self.end_work(id, now),
            TaskStatus::Pending
            | TaskStatus::Reserved
            | TaskStatus::Wrapping
            | TaskStatus::Completed
            | TaskStatus::Canceled
            | TaskStatus::Abandoned
            | TaskStatus::Overflowed => {}
        }
        Ok(self.outcome(id, now))
    }

    /// The caller hung up before an agent answered.
    fn abandon(&mut self, id: TaskId, now: DateTime<Utc>) {
        let Some(task) = self.tasks.get(&id) else {
            return;
        };
        let (queue, created_at, rank_at, number) = (
            task.queue_id,
            task.created_at,
            task.rank_at,
            task.calling_number.clone(),
        );
        let today = self.today(now);
        if let Some(runtime) = self.queues.get_mut(&queue) {
            runtime.roll(today);
            runtime.today.abandoned += 1;
            if (now - created_at).num_milliseconds()
                <= i64::from(runtime.queue.spec.service_level_seconds) * 1000
            {
                runtime.today.abandoned_within += 1;
            }
        }
        if let Some(number) = number
            && !self.settings.resume_window.is_zero()
        {
            self.resumable.insert(
                number,
                Resumable {
                    task_id: id,
                    queue_id: queue,
                    rank_at,
                    until: after(now, self.settings.resume_window),
                },
            );
        }
        self.finalize(id, TaskStatus::Abandoned, None, now);
    }

    // ---- deadlines

    pub(super) fn on_task_deadline(&mut self, id: TaskId, now: DateTime<Utc>) {
        let Some(task) = self.tasks.get(&id) else {
            return;
        };
        match task.status {
            TaskStatus::Reserved => {
                if let Some(reservation) = task.reservation.clone()
                    && reservation.expires_at <= now
                {
                    self.offer_timed_out(id, reservation.agent_id, now);
                }
            }
            TaskStatus::Wrapping => {
                if task.wrap_up_until.is_some_and(|until| until <= now) {
                    self.finish_wrap_up(id, now);
                }
            }
            TaskStatus::Pending => self.pending_deadline(id, now),
            TaskStatus::Assigned
            | TaskStatus::Completed
            | TaskStatus::Canceled
            | TaskStatus::Abandoned
            | TaskStatus::Overflowed => {}
        }
        self.reschedule(id, now);
    }

    /// Redirect on no answer: the offer is withdrawn, the agent made not ready,
    /// the task offered to the next agent.
    fn offer_timed_out(&mut self, id: TaskId, agent: AgentId, now: DateTime<Utc>) {
        self.withdraw(id, "timed_out", Some("no answer".into()), now);
        let no_answer = self.settings.no_answer_activity.clone();
        let available = self
            .agents
            .get(&agent)
            .is_some_and(|runtime| runtime.available);
        if available && self.activities.contains_key(&no_answer) {
            let _ = self.change_activity(agent, &no_answer, now);
        }
    }

    fn pending_deadline(&mut self, id: TaskId, now: DateTime<Utc>) {
        let Some(task) = self.tasks.get(&id) else {
            return;
        };
        if let Some(at) = task.not_before {
            if at <= now {
                if let Some(task) = self.tasks.get_mut(&id) {
                    task.not_before = None;
                    task.queued_at = now;
                    task.step = 0;
                }
                self.touch(id, now);
                self.slot(id, now);
            }
            return;
        }
        let step = self.step_at(task.queue_id, task.queued_at, now);
        if step > task.step {
            if let Some(task) = self.tasks.get_mut(&id) {
                task.step = step;
            }
            self.touch(id, now);
            // A wider target: free agents it now admits may take it.
            self.try_tasks.insert(id);
        }
        let Some(task) = self.tasks.get(&id) else {
            return;
        };
        if task.kind != TaskKind::Inbound {
            return;
        }
        let Some(spec) = self
            .queues
            .get(&task.queue_id)
            .map(|q| q.queue.spec.clone())
        else {
            return;
        };
        let waited = (now - task.queued_at).num_milliseconds();
        let reached = |wait: u32| i64::from(wait) * 1000 <= waited;
        let due = spec.overflow.iter().find(|rule| match rule.when {
            Trigger::Wait => rule.after_seconds.is_some_and(reached),
            Trigger::MaxWait => spec.max_wait_seconds.is_some_and(reached),
            Trigger::Full | Trigger::NoAgents | Trigger::Closed => false,
        });
        match due {
            Some(rule) => self.overflow(id, &rule.to.clone(), trigger_reason(rule.when), now),
            None => {
                if spec.max_wait_seconds.is_some_and(reached) {
                    self.finalize(id, TaskStatus::Overflowed, Some("timed_out".into()), now);
                }
            }
        }
    }
}

fn trigger_reason(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::Wait => "wait",
        Trigger::MaxWait => "max_wait",
        Trigger::Full => "full",
        Trigger::NoAgents => "no_agents",
        Trigger::Closed => "closed",
    }
}
