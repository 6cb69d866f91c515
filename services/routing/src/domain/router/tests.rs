#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use hotline_kit::auth::Role;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::domain::{
    command::{AttemptResult, NewTask, TransferTarget},
    model::{AgentSpec, QueueSpec, TaskStatus, default_activities},
};

fn settings() -> Settings {
    Settings {
        offer_timeout: Duration::from_secs(15),
        no_answer_activity: "not_ready".into(),
        priority_aging: Duration::from_secs(60),
        resume_window: Duration::from_secs(120),
        callback_retry: vec![Duration::from_secs(120), Duration::from_secs(600)],
        time_zone: chrono_tz::Tz::UTC,
        handle_time_samples: 100,
    }
}

fn actor(roles: &[Role]) -> Actor {
    Actor {
        subject: "tester".into(),
        roles: roles.iter().copied().collect(),
    }
}

fn lead() -> Actor {
    actor(&[Role::Supervisor])
}

fn switch() -> Actor {
    actor(&[Role::Service])
}

struct World {
    router: Router,
    now: DateTime<Utc>,
    /// Everything committed so far, as the database would hold it.
    store: Snapshot,
    finished: HashMap<Uuid, Task>,
}

impl World {
    fn new() -> Self {
        let now = DateTime::parse_from_rfc3339("2026-12-01T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let store = Snapshot {
            activities: default_activities(),
            ..Snapshot::default()
        };
        let router = Router::restore(settings(), store.clone(), now).unwrap();
        Self {
            router,
            now,
            store,
            finished: HashMap::new(),
        }
    }

    fn run(&mut self, command: Command) -> ApiResult<Outcome> {
        let outcome = self.router.execute(&lead(), command, self.now);
        self.commit();
        outcome
    }

    fn switch(&mut self, command: Command) -> ApiResult<Outcome> {
        let outcome = self.router.execute(&switch(), command, self.now);
        self.commit();
        outcome
    }

    /// Applies the router's changes to `store` as the leader would write them.
    fn commit(&mut self) -> Changes {
        let changes = self.router.take_changes();
        let mut tasks: HashMap<Uuid, Task> =
            self.store.active.drain(..).map(|t| (t.id, t)).collect();
        for task in &changes.tasks {
            if task.status.is_final() {
                tasks.remove(&task.id);
                self.store.recent.push(Recent::of(task));
                self.finished.insert(task.id, task.clone());
            } else {
                tasks.insert(task.id, task.clone());
            }
        }
        self.store.active = tasks.into_values().collect();
        for agent in &changes.agents {
            self.store.agents.retain(|a| a.id != agent.id);
            self.store.agents.push(agent.clone());
        }
        for queue in &changes.queues {
            self.store.queues.retain(|q| q.id != queue.id);
            self.store.queues.push(queue.clone());
        }
        if let Some(rules) = &changes.rules {
            self.store.rules.clone_from(rules);
        }
        for timer in &changes.timers_set {
            self.store.timers.retain(|t| t.key != timer.key);
            self.store.timers.push(timer.clone());
        }
        self.store
            .timers
            .retain(|t| !changes.timers_cancel.contains(&t.key));
        changes
    }

    fn advance(&mut self, seconds: i64) -> Changes {
        self.now += chrono::Duration::seconds(seconds);
        self.router.fire_due(self.now);
        self.commit()
    }

    fn queue(&mut self, spec: serde_json::Value) -> Uuid {
        let spec: QueueSpec = serde_json::from_value(spec).unwrap();
        self.run(Command::CreateQueue { spec })
            .unwrap()
            .queue()
            .unwrap()
            .id
    }

    fn agent(&mut self, spec: serde_json::Value) -> Uuid {
        let spec: AgentSpec = serde_json::from_value(spec).unwrap();
        let id = self
            .run(Command::CreateAgent { spec })
            .unwrap()
            .agent()
            .unwrap()
            .id;
        self.run(Command::SignIn {
            agent: id,
            activity: None,
        })
        .unwrap();
        id
    }

    fn call(&mut self, queue: &str, call_id: &str) -> TaskView {
        self.task_in(NewTask {
            external_id: Some(call_id.into()),
            queue: Some(queue.into()),
            calling_number: Some(format!("+86138{call_id:0>8}")),
            ..NewTask::default()
        })
    }

    fn task_in(&mut self, task: NewTask) -> TaskView {
        self.switch(Command::CreateTask { task })
            .unwrap()
            .task()
            .unwrap()
            .0
    }

    /// A task as the router shows it, or as it ended.
    fn task(&mut self, id: Uuid) -> TaskView {
        match self.run(Command::GetTask { id }) {
            Ok(outcome) => outcome.task().unwrap().0,
            Err(_) => TaskView::of(&self.finished[&id], String::new(), None, None),
        }
    }

    fn offered_to(&mut self, id: Uuid) -> Option<Uuid> {
        self.task(id).reservation.map(|r| r.agent_id)
    }

    fn accept(&mut self, task: Uuid) {
        let reservation = self.task(task).reservation.unwrap().id;
        self.run(Command::Accept { reservation }).unwrap();
    }

    fn complete(&mut self, task: Uuid) {
        self.run(Command::CompleteTask { id: task }).unwrap();
    }

    fn stats(&mut self, queue: &str) -> crate::views::QueueStats {
        self.run(Command::QueueStats {
            queue: Some(queue.into()),
        })
        .unwrap()
        .queue_stats()
        .unwrap()
        .remove(0)
    }
}

fn simple_queue(name: &str, strategy: &str) -> serde_json::Value {
    json!({"name": name, "target": "true", "strategy": strategy})
}

#[test]
fn longest_idle_offers_the_agent_free_longest() {
    let mut world = World::new();
    world.queue(simple_queue("q", "longest_idle"));
    let first = world.agent(json!({"name": "a"}));
    world.advance(5);
    let second = world.agent(json!({"name": "b"}));
    let call = world.call("q", "1");
    assert_eq!(world.offered_to(call.id), Some(first));
    world.accept(call.id);
    world.advance(10);
    world.complete(call.id);
    // `first` just finished: `second` has been idle longer.
    let next = world.call("q", "2");
    assert_eq!(world.offered_to(next.id), Some(second));
}

#[test]
fn round_robin_rotates_through_the_queues_agents() {
    let mut world = World::new();
    world.queue(simple_queue("q", "round_robin"));
    let agents: Vec<Uuid> = (0..3)
        .map(|i| world.agent(json!({"name": format!("a{i}")})))
        .collect();
    let mut offered = Vec::new();
    for call in 0..6 {
        let task = world.call("q", &call.to_string());
        let agent = world.offered_to(task.id).unwrap();
        offered.push(agent);
        world.accept(task.id);
        world.complete(task.id);
    }
    for agent in &agents {
        assert_eq!(
            offered.iter().filter(|a| *a == agent).count(),
            2,
            "{offered:?}"
        );
    }
    assert_ne!(offered[0], offered[1]);
    assert_ne!(offered[1], offered[2]);
}

#[test]
fn fewest_tasks_and_least_talk_time_balance_the_day() {
    for strategy in ["fewest_tasks_today", "least_talk_time"] {
        let mut world = World::new();
        world.queue(simple_queue("q", strategy));
        let busy = world.agent(json!({"name": "busy"}));
        let call = world.call("q", "1");
        assert_eq!(world.offered_to(call.id), Some(busy));
        world.accept(call.id);
        world.advance(60);
        world.complete(call.id);
        let fresh = world.agent(json!({"name": "fresh"}));
        // `busy` has been idle longer than `fresh` signed in, but worked more today.
        world.advance(1);
        let next = world.call("q", "2");
        assert_eq!(world.offered_to(next.id), Some(fresh), "{strategy}");
    }
}

#[test]
fn best_skill_prefers_the_highest_level_then_random_picks_any_eligible() {
    let mut world = World::new();
    world.queue(json!({"name": "q", "target": "skills.broadband >= 10", "strategy": "best_skill"}));
    world.agent(json!({"name": "low", "skills": {"broadband": 20}}));
    let high = world.agent(json!({"name": "high", "skills": {"broadband": 90}}));
    world.agent(json!({"name": "none", "skills": {"tv": 100}}));
    let call = world.call("q", "1");
    assert_eq!(world.offered_to(call.id), Some(high));

    let mut world = World::new();
    world.queue(json!({"name": "r", "target": "group == \"night\"", "strategy": "random"}));
    let night: Vec<Uuid> = (0..3)
        .map(|i| world.agent(json!({"name": format!("n{i}"), "groups": ["night"]})))
        .collect();
    world.agent(json!({"name": "day", "groups": ["day"]}));
    for call in 0..3 {
        let task = world.call("r", &call.to_string());
        assert!(night.contains(&world.offered_to(task.id).unwrap()));
    }
}

#[test]
fn relaxation_widens_the_target_as_the_wait_grows() {
    let mut world = World::new();
    world.queue(json!({
        "name": "q",
        "target": "skills.broadband >= 50",
        "relaxation": [{"after_seconds": 30, "target": "skills.broadband >= 0"}],
    }));
    let junior = world.agent(json!({"name": "junior", "skills": {"broadband": 10}}));
    let call = world.call("q", "1");
    assert_eq!(world.task(call.id).status, TaskStatus::Pending);
    world.advance(29);
    assert_eq!(world.task(call.id).status, TaskStatus::Pending);
    world.advance(1);
    let task = world.task(call.id);
    assert_eq!(task.step, 1);
    assert_eq!(task.reservation.map(|r| r.agent_id), Some(junior));
}

#[test]
fn overflow_by_wait_full_no_agents_closed_and_max_wait() {
    let mut world = World::new();
    world.queue(simple_queue("backup", "longest_idle"));
    world.queue(json!({
        "name": "main",
        "target": "group == \"main\"",
        "max_size": 1,
        "overflow": [
            {"when": "wait", "after_seconds": 40, "to": {"queue": "backup"}},
            {"when": "full", "to": {"outcome": "voicemail"}},
        ],
    }));
    // Somebody is signed in for main (on break), so nothing overflows at once.
    let main = world.agent(json!({"name": "m", "groups": ["main"]}));
    world
        .run(Command::SetActivity {
            agent: main,
            activity: "break".into(),
        })
        .unwrap();
    let first = world.call("main", "1");
    assert_eq!(world.task(first.id).status, TaskStatus::Pending);
    let second = world.call("main", "2");
    let second = world.task(second.id);
    assert_eq!(
        (second.status, second.outcome.as_deref()),
        (TaskStatus::Overflowed, Some("voicemail"))
    );
    world.advance(40);
    let moved = world.task(first.id);
    assert_eq!(moved.queue, "backup");
    assert_eq!(moved.status, TaskStatus::Pending);
    assert_eq!(moved.visited.len(), 1);

    world.queue(json!({
        "name": "night",
        "target": "group == \"night\"",
        "overflow": [{"when": "no_agents", "to": {"outcome": "callback"}}],
    }));
    let nobody = world.call("night", "3");
    assert_eq!(
        world.task(nobody.id).kind,
        crate::domain::model::TaskKind::Callback
    );

    world.queue(json!({
        "name": "office",
        "target": "true",
        "business_hours": {"weekly": [{"days": ["sat"], "from": "08:00", "to": "09:00"}]},
        "overflow": [{"when": "closed", "to": {"queue": "backup"}}],
    }));
    let late = world.call("office", "4");
    assert_eq!(world.task(late.id).queue, "backup");

    world.queue(json!({"name": "short", "target": "group == \"main\"", "max_wait_seconds": 10}));
    let waits = world.call("short", "5");
    world.advance(10);
    let waits = world.task(waits.id);
    assert_eq!(
        (waits.status, waits.outcome.as_deref()),
        (TaskStatus::Overflowed, Some("timed_out"))
    );
    assert!(world.stats("main").overflowed >= 1);
}

#[test]
fn an_unanswered_offer_makes_the_agent_not_ready_and_goes_to_the_next_agent() {
    let mut world = World::new();
    world.queue(simple_queue("q", "longest_idle"));
    let sleepy = world.agent(json!({"name": "sleepy"}));
    world.advance(1);
    let awake = world.agent(json!({"name": "awake"}));
    let call = world.call("q", "1");
    assert_eq!(world.offered_to(call.id), Some(sleepy));
    let changes = world.advance(15);
    assert_eq!(
        world.offered_to(call.id),
        Some(awake),
        "re-offered in the same tick"
    );
    let kinds: Vec<&str> = changes.happenings.iter().map(|h| h.kind).collect();
    assert!(kinds.contains(&crate::events::TASK_TIMED_OUT), "{kinds:?}");
    let sleepy = world
        .run(Command::GetAgent { id: sleepy })
        .unwrap()
        .agent()
        .unwrap();
    assert_eq!(sleepy.activity, "not_ready");
    assert!(!sleepy.available);
}

#[test]
fn a_rejected_task_goes_to_the_next_agent_and_never_back() {
    let mut world = World::new();
    world.queue(simple_queue("q", "longest_idle"));
    let first = world.agent(json!({"name": "first"}));
    world.advance(1);
    let second = world.agent(json!({"name": "second"}));
    let call = world.call("q", "1");
    let reservation = world.task(call.id).reservation.unwrap();
    assert_eq!(reservation.agent_id, first);
    world
        .run(Command::Reject {
            reservation: reservation.id,
            reason: Some("busy".into()),
        })
        .unwrap();
    assert_eq!(world.offered_to(call.id), Some(second));
    let again = world.task(call.id).reservation.unwrap();
    world
        .run(Command::Reject {
            reservation: again.id,
            reason: None,
        })
        .unwrap();
    assert_eq!(
        world.task(call.id).status,
        TaskStatus::Pending,
        "both declined: it waits"
    );
    // A late answer to the first offer is refused and changes nothing.
    let late = world.run(Command::Accept {
        reservation: reservation.id,
    });
    assert_eq!(
        late.err().map(|e| e.kind),
        Some("reservation_not_pending".into())
    );
}

#[test]
fn an_agent_may_answer_only_their_own_offers() {
    let mut world = World::new();
    world.queue(simple_queue("q", "longest_idle"));
    let mine = world.agent(json!({"name": "mine", "login": "client-mine"}));
    world.agent(json!({"name": "other", "login": "client-other"}));
    let call = world.call("q", "1");
    let reservation = world.task(call.id).reservation.unwrap();
    assert_eq!(reservation.agent_id, mine);
    let other = Actor {
        subject: "client-other".into(),
        roles: [Role::Agent].into_iter().collect(),
    };
    let refused = world.router.execute(
        &other,
        Command::Accept {
            reservation: reservation.id,
        },
        world.now,
    );
    assert_eq!(
        refused.err().map(|e| e.code),
        Some(hotline_kit::ErrorCode::Forbidden)
    );
    assert!(world.commit().tasks.is_empty(), "nothing changed");
    let owner = Actor {
        subject: "client-mine".into(),
        roles: [Role::Agent].into_iter().collect(),
    };
    world
        .router
        .execute(
            &owner,
            Command::Accept {
                reservation: reservation.id,
            },
            world.now,
        )
        .unwrap();
    world.commit();
    assert_eq!(world.task(call.id).status, TaskStatus::Assigned);
}

#[test]
fn a_caller_who_hangs_up_and_calls_back_within_the_window_keeps_their_place() {
    let mut world = World::new();
    world.queue(json!({"name": "q", "target": "group == \"x\""}));
    let agent = world.agent(json!({"name": "x", "groups": ["x"]}));
    world
        .run(Command::SetActivity {
            agent,
            activity: "break".into(),
        })
        .unwrap();
    let early = world.call("q", "1");
    world.advance(10);
    let middle = world.call("q", "2");
    world
        .switch(Command::CallAbandoned {
            call_id: "1".into(),
        })
        .unwrap();
    world.advance(30);
    let back = world.task_in(NewTask {
        external_id: Some("3".into()),
        queue: Some("q".into()),
        calling_number: early.calling_number.clone(),
        ..NewTask::default()
    });
    assert_eq!(back.resumed_from, Some(early.id));
    assert_eq!(back.position, Some(1), "ahead of the caller who came later");
    assert_eq!(world.task(middle.id).position, Some(2));
    assert_eq!(world.stats("q").abandoned, 1);
}

#[test]
fn a_callback_keeps_its_place_and_is_retried_then_given_up() {
    let mut world = World::new();
    world.queue(json!({"name": "q", "target": "true"}));
    let agent = world.agent(json!({"name": "a"}));
    world
        .run(Command::SetActivity {
            agent,
            activity: "break".into(),
        })
        .unwrap();
    let caller = world.call("q", "1");
    world.advance(5);
    let later = world.call("q", "2");
    world
        .switch(Command::RequestCallback {
            id: caller.id,
            number: None,
        })
        .unwrap();
    assert_eq!(world.task(caller.id).position, Some(1));
    world
        .run(Command::SetActivity {
            agent,
            activity: "ready".into(),
        })
        .unwrap();
    let offered = world.task(caller.id);
    assert_eq!(offered.status, TaskStatus::Reserved, "the callback first");
    assert_eq!(world.task(later.id).status, TaskStatus::Pending);
    for (attempt, delay) in [(1, 120), (2, 600)] {
        world.accept(caller.id);
        world
            .run(Command::ReportAttempt {
                id: caller.id,
                result: AttemptResult::NoAnswer,
            })
            .unwrap();
        let waiting = world.task(caller.id);
        assert_eq!(
            waiting.callback.as_ref().map(|c| c.failed_attempts),
            Some(attempt)
        );
        assert!(waiting.not_before.is_some());
        // Meanwhile the agent takes the other caller and finishes.
        if attempt == 1 {
            world.accept(later.id);
            world.complete(later.id);
        }
        world.advance(delay);
        assert_eq!(
            world.task(caller.id).status,
            TaskStatus::Reserved,
            "attempt {attempt}"
        );
    }
    world.accept(caller.id);
    world
        .run(Command::ReportAttempt {
            id: caller.id,
            result: AttemptResult::NoAnswer,
        })
        .unwrap();
    let gone = world.task(caller.id);
    assert_eq!(
        (gone.status, gone.outcome.as_deref()),
        (TaskStatus::Completed, Some("unreachable"))
    );
}

#[test]
fn capacity_per_channel_caps_the_offers() {
    let mut world = World::new();
    world.queue(simple_queue("chat", "longest_idle"));
    world.agent(json!({"name": "a", "capacity": {"voice": 1, "chat": 2}}));
    let tasks: Vec<TaskView> = (0..3)
        .map(|i| {
            world.task_in(NewTask {
                external_id: Some(format!("c{i}")),
                channel: crate::domain::model::Channel::Chat,
                queue: Some("chat".into()),
                ..NewTask::default()
            })
        })
        .collect();
    let statuses: Vec<TaskStatus> = tasks.iter().map(|t| world.task(t.id).status).collect();
    assert_eq!(
        statuses,
        [
            TaskStatus::Reserved,
            TaskStatus::Reserved,
            TaskStatus::Pending
        ]
    );
    let call = world.call("chat", "v");
    assert_eq!(
        world.task(call.id).status,
        TaskStatus::Reserved,
        "voice has its own capacity"
    );
}

#[test]
fn wrap_up_holds_the_agent_then_frees_them() {
    let mut world = World::new();
    world.queue(json!({"name": "q", "target": "true", "wrap_up_seconds": 20}));
    world.agent(json!({"name": "a"}));
    let first = world.call("q", "1");
    world.accept(first.id);
    let second = world.call("q", "2");
    world.complete(first.id);
    assert_eq!(world.task(first.id).status, TaskStatus::Wrapping);
    assert_eq!(world.task(second.id).status, TaskStatus::Pending);
    world.advance(20);
    assert_eq!(world.task(second.id).status, TaskStatus::Reserved);
}

#[test]
fn higher_priority_goes_first_and_waiting_ages_priority() {
    let mut world = World::new();
    world.queue(json!({"name": "q", "target": "true"}));
    let agent = world.agent(json!({"name": "a"}));
    world
        .run(Command::SetActivity {
            agent,
            activity: "break".into(),
        })
        .unwrap();
    let old = world.call("q", "old");
    world.advance(90);
    let vip = world.task_in(NewTask {
        external_id: Some("vip".into()),
        queue: Some("q".into()),
        priority: 1,
        ..NewTask::default()
    });
    // 90 s of waiting outweigh one priority level (60 s).
    assert_eq!(world.task(old.id).position, Some(1));
    let urgent = world.task_in(NewTask {
        external_id: Some("urgent".into()),
        queue: Some("q".into()),
        priority: 5,
        ..NewTask::default()
    });
    assert_eq!(world.task(urgent.id).position, Some(1));
    assert_eq!(world.task(vip.id).position, Some(3));
}

#[test]
fn the_estimated_wait_is_position_times_handle_time_over_staffing() {
    let mut world = World::new();
    world.queue(json!({"name": "q", "target": "true", "expected_handle_seconds": 100}));
    let agents: Vec<Uuid> = (0..2)
        .map(|i| world.agent(json!({"name": format!("a{i}")})))
        .collect();
    let busy: Vec<TaskView> = (0..2).map(|i| world.call("q", &format!("b{i}"))).collect();
    for task in &busy {
        world.accept(task.id);
    }
    let waiting: Vec<TaskView> = (0..3).map(|i| world.call("q", &format!("w{i}"))).collect();
    for (index, task) in waiting.iter().enumerate() {
        assert_eq!(task.position, Some(index as u32 + 1));
        let expected = (index as f64 + 1.0) * 100.0 / 2.0;
        assert!(
            (task.estimated_wait_seconds.unwrap() - expected).abs() < 1e-6,
            "{task:?}"
        );
    }
    assert_eq!(agents.len(), 2);
}

#[test]
fn statistics_count_service_level_speed_of_answer_and_abandons() {
    let mut world = World::new();
    world.queue(json!({"name": "q", "target": "true", "service_level_seconds": 20}));
    let agent = world.agent(json!({"name": "a"}));
    let fast = world.call("q", "1");
    world.advance(5);
    world.accept(fast.id);
    let slow = world.call("q", "2");
    world.advance(30);
    world.complete(fast.id);
    world.accept(slow.id);
    world
        .run(Command::SetActivity {
            agent,
            activity: "break".into(),
        })
        .unwrap();
    let gone = world.call("q", "3");
    world.advance(40);
    world
        .switch(Command::CallAbandoned {
            call_id: "3".into(),
        })
        .unwrap();
    let stats = world.stats("q");
    assert_eq!((stats.offered, stats.answered, stats.abandoned), (3, 2, 1));
    assert_eq!(stats.answered_within_threshold, 1);
    assert_eq!(stats.service_level, Some(1.0 / 3.0));
    assert_eq!(stats.asa_seconds, Some((5.0 + 30.0) / 2.0));
    assert_eq!(stats.agents.get("busy"), Some(&1));
    assert_eq!(gone.position, Some(1));
}

#[test]
fn transfers_move_the_work_with_its_customer_data() {
    let mut world = World::new();
    world.queue(simple_queue("first", "longest_idle"));
    world.queue(json!({"name": "second", "target": "group == \"experts\""}));
    world.agent(json!({"name": "a"}));
    let expert = world.agent(json!({"name": "e", "groups": ["experts"]}));
    let mut task = NewTask {
        external_id: Some("1".into()),
        queue: Some("first".into()),
        ..NewTask::default()
    };
    task.customer = Some(json!({"candidates": [{"name": "张伟"}]}));
    let call = world.task_in(task);
    let agent = world.offered_to(call.id).unwrap();
    assert_ne!(agent, expert);
    world.accept(call.id);
    world
        .run(Command::TransferTask {
            id: call.id,
            to: TransferTarget::Queue("second".into()),
        })
        .unwrap();
    let moved = world.task(call.id);
    assert_eq!(moved.reservation.map(|r| r.agent_id), Some(expert));
    assert_eq!(
        moved.customer,
        Some(json!({"candidates": [{"name": "张伟"}]}))
    );
}

#[test]
fn a_restored_router_carries_on_where_the_last_one_stopped() {
    let mut world = World::new();
    world.queue(json!({"name": "q", "target": "true", "wrap_up_seconds": 10}));
    let agent = world.agent(json!({"name": "a"}));
    world.advance(1);
    let other = world.agent(json!({"name": "b"}));
    let ringing = world.call("q", "1");
    let talking = world.call("q", "2");
    world.accept(talking.id);
    let waiting = world.call("q", "3");
    assert_eq!(world.offered_to(ringing.id), Some(agent));
    assert_eq!(world.task(talking.id).agent_id, Some(other));
    // A new leader 20 s later: the offer's 15 s ran out meanwhile.
    world.now += chrono::Duration::seconds(20);
    world.router = Router::restore(settings(), world.store.clone(), world.now).unwrap();
    let changes = world.commit();
    assert!(
        changes
            .happenings
            .iter()
            .any(|h| h.kind == crate::events::TASK_TIMED_OUT)
    );
    assert_eq!(
        world.task(ringing.id).status,
        TaskStatus::Pending,
        "nobody free: it waits"
    );
    assert_eq!(world.task(waiting.id).position, Some(2));
    let a = world
        .run(Command::GetAgent { id: agent })
        .unwrap()
        .agent()
        .unwrap();
    assert_eq!(a.activity, "not_ready");
    assert_eq!(world.stats("q").offered, 3);
}

/// Random operations against the invariants routing promises: no agent holds
/// more than their capacity, no task is offered to two agents, and no free
/// agent could take a waiting task.
#[test]
fn random_days_keep_the_invariants() {
    for seed in 0..20u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut world = World::new();
        world.queue(json!({"name": "a", "target": "skills.a >= 50", "relaxation": [{"after_seconds": 20, "target": "HAS skills.a"}], "wrap_up_seconds": 3}));
        world.queue(json!({"name": "b", "target": "group == \"b\"", "strategy": "round_robin", "overflow": [{"when": "wait", "after_seconds": 30, "to": {"queue": "a"}}]}));
        let agents: Vec<Uuid> = (0..6)
            .map(|i| {
                world.agent(json!({
                    "name": format!("agent{i}"),
                    "skills": {"a": rng.random_range(0..100)},
                    "groups": if i % 2 == 0 { vec!["b"] } else { vec![] },
                    "capacity": {"voice": 1, "chat": rng.random_range(0..3)},
                }))
            })
            .collect();
        for step in 0..400 {
            let tasks: Vec<TaskView> = world
                .run(Command::ActiveTasks { queues: Vec::new() })
                .unwrap()
                .tasks()
                .unwrap();
            match rng.random_range(0..10) {
                0..=2 => {
                    world.task_in(NewTask {
                        external_id: Some(format!("{seed}-{step}")),
                        queue: Some(if rng.random_bool(0.5) { "a" } else { "b" }.into()),
                        channel: if rng.random_bool(0.7) {
                            crate::domain::model::Channel::Voice
                        } else {
                            crate::domain::model::Channel::Chat
                        },
                        priority: rng.random_range(0..3),
                        ..NewTask::default()
                    });
                }
                3 => {
                    if let Some(task) = tasks.iter().find(|t| t.status == TaskStatus::Reserved) {
                        let reservation = task.reservation.clone().unwrap().id;
                        let command = if rng.random_bool(0.8) {
                            Command::Accept { reservation }
                        } else {
                            Command::Reject {
                                reservation,
                                reason: None,
                            }
                        };
                        world.run(command).unwrap();
                    }
                }
                4 => {
                    if let Some(task) = tasks.iter().find(|t| t.status == TaskStatus::Assigned) {
                        world.run(Command::CompleteTask { id: task.id }).unwrap();
                    }
                }
                5 => {
                    let agent = agents[rng.random_range(0..agents.len())];
                    let activity = ["ready", "break", "ready", "ready"][rng.random_range(0..4)];
                    let _ = world.run(Command::SetActivity {
                        agent,
                        activity: activity.into(),
                    });
                }
                6 => {
                    if let Some(task) = tasks.iter().find(|t| t.status.is_waiting()) {
                        world
                            .run(Command::CancelTask {
                                id: task.id,
                                reason: None,
                            })
                            .unwrap();
                    }
                }
                _ => {
                    world.advance(rng.random_range(1..8));
                }
            }
            check_invariants(&world.router, seed, step);
        }
    }
}

fn check_invariants(router: &Router, seed: u64, step: usize) {
    let mut offered: HashMap<Uuid, Uuid> = HashMap::new();
    for (id, task) in &router.tasks {
        if task.status == TaskStatus::Reserved {
            let reservation = task
                .reservation
                .as_ref()
                .expect("a reserved task has its reservation");
            assert_eq!(router.reservations.get(&reservation.id), Some(id));
            assert!(offered.insert(*id, reservation.agent_id).is_none());
        }
    }
    assert_eq!(
        router.reservations.len(),
        offered.len(),
        "seed {seed} step {step}: stray reservations"
    );
    for runtime in router.agents.values() {
        for channel in crate::domain::model::Channel::ALL {
            let held = router
                .tasks
                .values()
                .filter(|task| task.channel == channel)
                .filter(|task| match task.status {
                    TaskStatus::Reserved => {
                        task.reservation.as_ref().map(|r| r.agent_id) == Some(runtime.agent.id)
                    }
                    TaskStatus::Assigned | TaskStatus::Wrapping => {
                        task.agent_id == Some(runtime.agent.id)
                    }
                    TaskStatus::Pending
                    | TaskStatus::Completed
                    | TaskStatus::Canceled
                    | TaskStatus::Abandoned
                    | TaskStatus::Overflowed => false,
                })
                .count() as u32;
            let load = runtime.load[channel];
            assert_eq!(
                load.total(),
                held,
                "seed {seed} step {step}: load bookkeeping"
            );
            assert!(
                held <= runtime.agent.capacity(channel),
                "seed {seed} step {step}: over capacity"
            );
        }
    }
    // Nobody free could take anything waiting.
    for runtime in router.agents.values() {
        assert_eq!(
            runtime.available,
            router.activity_available(&runtime.agent.activity)
        );
        if !runtime.available {
            continue;
        }
        for channel in crate::domain::model::Channel::ALL {
            if router.free_capacity(runtime, channel) == 0 {
                continue;
            }
            for (queue, min_step) in &runtime.memberships {
                for (_, id) in &router.queues[queue].waiting {
                    let task = &router.tasks[id];
                    assert!(
                        task.channel != channel
                            || task.step < *min_step
                            || task.declined_by.contains(&runtime.agent.id),
                        "seed {seed} step {step}: a free agent and a task it could take"
                    );
                }
            }
        }
    }
}
