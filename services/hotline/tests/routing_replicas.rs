//! Routing correct across replicas: three `hotline serve --target routing`
//! processes (beside one identity) on PostgreSQL + Redis + RabbitMQ, thousands
//! of calls fed through all of them, simulated agents that answer (or now and
//! then miss) offers from their streams, talk and end their calls — and the
//! replica holding the router killed with SIGKILL mid-run. Then, from the
//! database and the event stream: no task lost or made twice, none offered to
//! two agents at once, no agent offered more than their capacity, every offer
//! answered or timed out (timeouts fire after the takeover too).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use common::{Clients, Replica, wait_ready};
use hotline::simulate::{EventStream, offer_for};
use hotline_proto::events::v1::RoutedTask;
use hotline_testkit::{Infra, Recording, broker_queue};
use prost::Message;
use rand::Rng;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const ADMIN: (&str, &str) = ("replicas-admin", "replicas-admin-secret-0123456789");
const TASKS: usize = 2000;
const AGENTS: usize = 24;
const CALLS_PER_SECOND: f64 = 45.0;
/// Offers a simulated agent leaves ringing (they time out after 3 s).
const MISSED: f64 = 0.03;

/// A simulated agent: answers offers from their stream (reconnecting to the
/// next replica when theirs goes), talks a little, ends the call; back to
/// ready when a missed offer made them not ready. While `holding` is set they
/// let every offer ring.
async fn agent(
    clients: Arc<Clients>,
    id: String,
    start: usize,
    holding: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    // Tasks in hand: a reconnection's snapshot repeats them.
    let handling: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut replica = start;
    while !stop.is_cancelled() {
        let base = &clients.replicas[replica % clients.replicas.len()];
        replica += 1;
        let Ok(response) = clients
            .http
            .get(format!("{base}/api/v1/agents/{id}/stream"))
            .bearer_auth(&clients.token)
            .send()
            .await
        else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if !response.status().is_success() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        // The stream's snapshot names the tasks in hand, not the agent's
        // state: a missed offer that timed out while it reconnected left them
        // not ready, which an agent's app reads and puts right.
        let (_, me) = clients
            .send(reqwest::Method::GET, &format!("/api/v1/agents/{id}"), None)
            .await;
        if me["activity"] == "not_ready" {
            clients
                .send(
                    reqwest::Method::PUT,
                    &format!("/api/v1/agents/{id}/activity"),
                    Some(&json!({"activity": "ready"})),
                )
                .await;
        }
        let mut events = EventStream::new(response);
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => return,
                event = events.next() => event,
            };
            let Some((name, data)) = event else { break };
            if name == "agent" && data["agent"]["activity"] == "not_ready" {
                let clients = clients.clone();
                let path = format!("/api/v1/agents/{id}/activity");
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    clients
                        .send(
                            reqwest::Method::PUT,
                            &path,
                            Some(&json!({"activity": "ready"})),
                        )
                        .await;
                });
                continue;
            }
            // An accept that committed just before its replica died shows up
            // as an assigned task in the next snapshot: finish it.
            let in_hand = name == "snapshot"
                && data["task"]["status"] == "assigned"
                && data["task"]["agent_id"] == id.as_str();
            let offered = offer_for(&name, data.clone(), &id);
            let Some(task) = offered.or_else(|| in_hand.then(|| data["task"].clone())) else {
                continue;
            };
            let task_id = task["id"].as_str().unwrap().to_owned();
            if !in_hand && (holding.load(Ordering::SeqCst) || rand::rng().random_bool(MISSED)) {
                continue;
            }
            if !handling.lock().unwrap().insert(task_id.clone()) {
                continue;
            }
            let (clients, handling, id) = (clients.clone(), handling.clone(), id.clone());
            tokio::spawn(async move {
                if !in_hand {
                    let reservation = task["reservation"]["id"].as_str().unwrap();
                    let (status, _) = clients
                        .post(
                            &format!("/api/v1/reservations/{reservation}/accept"),
                            &json!({}),
                        )
                        .await;
                    // Not 200 may still be ours: the accept committed and its
                    // answer was lost with a replica (the retry then finds it taken).
                    let ours = status == 200 || {
                        let (_, now) = clients
                            .send(
                                reqwest::Method::GET,
                                &format!("/api/v1/tasks/{task_id}"),
                                None,
                            )
                            .await;
                        now["status"] == "assigned" && now["agent_id"] == id.as_str()
                    };
                    if !ours {
                        handling.lock().unwrap().remove(&task_id);
                        return;
                    }
                }
                let talk = rand::rng().random_range(20..120);
                tokio::time::sleep(Duration::from_millis(talk)).await;
                // 404: it completed already (the answer was lost with a replica).
                let (status, body) = clients
                    .post(&format!("/api/v1/tasks/{task_id}/complete"), &json!({}))
                    .await;
                assert!(
                    status == 200 || status == 404,
                    "completing {task_id}: {status} {body}"
                );
                handling.lock().unwrap().remove(&task_id);
            });
        }
    }
}

fn at(value: &Option<DateTime<Utc>>) -> i64 {
    value.map_or(i64::MAX, |t| t.timestamp_micros())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_lose_no_task_and_double_no_offer_when_the_router_is_killed() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let Some(infra) = Infra::real().await else {
        return;
    };
    let (observer, subscription) =
        broker_queue(&infra.amqp_url, "observer.routing", &["routing.#"]).await;
    let data_dir = infra.data_dir();
    let probe = reqwest::Client::new();
    let admin = [
        ("HOTLINE_BOOTSTRAP_CLIENT_ID", ADMIN.0),
        ("HOTLINE_BOOTSTRAP_CLIENT_SECRET", ADMIN.1),
    ];
    let mut identity = Replica::new(&infra, "identity", &admin);
    identity.start(&data_dir);
    wait_ready(&probe, &mut identity, &data_dir).await;
    let peers = [
        ("HOTLINE_PEERS__IDENTITY_GRPC", identity.grpc.clone()),
        ("HOTLINE_PEERS__IDENTITY_HTTP", identity.http.clone()),
        ("HOTLINE_ROUTING__LEASE_TTL", "2s".to_owned()),
        ("HOTLINE_ROUTING__LEASE_RENEW", "500ms".to_owned()),
    ];
    let peers: Vec<(&str, &str)> = peers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let mut replicas: Vec<Replica> = (0..3)
        .map(|_| Replica::new(&infra, "routing", &peers))
        .collect();
    for replica in &mut replicas {
        replica.start(&data_dir);
        wait_ready(&probe, replica, &data_dir).await;
    }
    let token = hotline_testkit::client_token(&probe, &identity.http, ADMIN.0, ADMIN.1).await;
    let clients = Arc::new(Clients::new(
        replicas.iter().map(|r| r.http.clone()).collect(),
        token,
    ));

    let (status, queue) = clients
        .post(
            "/api/v1/queues",
            &json!({"name": "replicated", "target": "true", "offer_timeout_seconds": 3}),
        )
        .await;
    assert_eq!(status, 201, "{queue}");
    // The call made as the router is killed goes to the one agent of this
    // queue, who lets it ring until the kill: an offer that spans it.
    let (status, queue) = clients
        .post(
            "/api/v1/queues",
            &json!({"name": "held", "target": "group == \"held\"", "offer_timeout_seconds": 3}),
        )
        .await;
    assert_eq!(status, 201, "{queue}");
    let mut agent_ids = Vec::new();
    for index in 0..AGENTS {
        let groups: &[&str] = if index == 0 { &["held"] } else { &[] };
        let (status, created) = clients
            .post(
                "/api/v1/agents",
                &json!({"name": format!("agent-{index}"), "groups": groups}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        let (status, _) = clients
            .post(&format!("/api/v1/agents/{id}/sign-in"), &json!({}))
            .await;
        assert_eq!(status, 200);
        agent_ids.push(id);
    }
    let stop = CancellationToken::new();
    let holding = Arc::new(AtomicBool::new(false));
    let agents: Vec<_> = agent_ids
        .iter()
        .enumerate()
        .map(|(index, id)| {
            let holding = if index == 0 {
                holding.clone()
            } else {
                Arc::default()
            };
            tokio::spawn(agent(
                clients.clone(),
                id.clone(),
                index,
                holding,
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Calls arrive through every replica; the router's holder is killed a third in.
    let started = Instant::now();
    let created = Arc::new(Mutex::new(HashSet::new()));
    let mut feeders = tokio::task::JoinSet::new();
    let mut killed_at = None;
    let mut killed_replica = None;
    for n in 0..TASKS {
        let due = started + Duration::from_secs_f64(n as f64 / CALLS_PER_SECOND);
        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        if n == TASKS / 3 {
            // Killed while the held call's offer rings (it times out 3 s after
            // it is made), so an offer spans the takeover however loaded the
            // machine is; answered or timed out only after the kill.
            holding.store(true, Ordering::SeqCst);
            let (status, held) = clients
                .post(
                    "/api/v1/cti/calls",
                    &json!({"call_id": format!("replicated-{n}"), "queue": "held"}),
                )
                .await;
            assert_eq!(status, 201, "{held}");
            let held = held["id"].as_str().unwrap().to_owned();
            created.lock().unwrap().insert(held.clone());
            let db = Database::connect(&infra.database_url).await.unwrap();
            let ringing_by = Instant::now() + Duration::from_secs(30);
            while !fresh_offer(&db, &infra, &held).await {
                assert!(
                    Instant::now() < ringing_by,
                    "the held call was never offered"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let holder = leader_address(&infra).await;
            let index = replicas
                .iter()
                .position(|r| r.grpc == holder)
                .expect("the holder is a replica");
            replicas[index].kill();
            killed_at = Some(Utc::now());
            killed_replica = Some(index);
            holding.store(false, Ordering::SeqCst);
            continue;
        }
        let (clients, created) = (clients.clone(), created.clone());
        feeders.spawn(async move {
            let (status, task) = clients
                .post(
                    "/api/v1/cti/calls",
                    &json!({"call_id": format!("replicated-{n}"), "queue": "replicated"}),
                )
                .await;
            assert!(status == 201 || status == 200, "{status} {task}");
            created
                .lock()
                .unwrap()
                .insert(task["id"].as_str().unwrap().to_owned());
        });
        // The killed replica comes back as a follower a few seconds later.
        if n == TASKS / 3 + (CALLS_PER_SECOND as usize) * 4
            && let Some(index) = killed_replica
        {
            replicas[index].start(&data_dir);
        }
    }
    while let Some(joined) = feeders.join_next().await {
        joined.unwrap();
    }
    let fed = started.elapsed();
    // A switch repeating a call it already offered, through every replica
    // (followers forward it): the first task, not a conflict.
    for _ in 0..replicas.len() {
        let (status, task) = clients
            .post(
                "/api/v1/cti/calls",
                &json!({"call_id": "replicated-1", "queue": "replicated"}),
            )
            .await;
        assert_eq!(status, 200, "{task}");
        assert!(
            created
                .lock()
                .unwrap()
                .contains(task["id"].as_str().unwrap())
        );
    }
    let killed_at = killed_at.unwrap();

    // Every task completes.
    let db = Database::connect(&infra.database_url).await.unwrap();
    let schema = format!("{}_routing", infra.run_id);
    let count = |sql: String| {
        let db = &db;
        async move {
            let row = db
                .query_one_raw(Statement::from_string(
                    sea_orm::DatabaseBackend::Postgres,
                    sql,
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get::<i64>("", "n").unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let open = count(format!(
            "SELECT count(*) AS n FROM \"{schema}\".task WHERE status <> 'completed'"
        ))
        .await;
        if open == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{open} tasks never completed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    for agent in agents {
        agent.await.unwrap();
    }
    println!(
        "replicas: {TASKS} calls fed in {:.1} s through 3 replicas, the router's holder killed at call {}, {} requests retried",
        fed.as_secs_f64(),
        TASKS / 3,
        clients.retries.load(Ordering::Relaxed)
    );

    // No task lost, none made twice.
    assert_eq!(created.lock().unwrap().len(), TASKS);
    assert_eq!(
        count(format!("SELECT count(*) AS n FROM \"{schema}\".task")).await,
        TASKS as i64
    );
    assert_eq!(
        count(format!(
            "SELECT count(DISTINCT external_id) AS n FROM \"{schema}\".task"
        ))
        .await,
        TASKS as i64
    );
    assert_eq!(
        count(format!(
            "SELECT count(*) AS n FROM \"{schema}\".reservation WHERE status = 'offered'"
        ))
        .await,
        0,
        "every offer was answered, withdrawn or timed out"
    );

    // Each offer's span: offered until answered (accepted: until the task completed).
    let rows = db
        .query_all_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            format!(
                "SELECT r.task_id::text AS task, r.agent_id::text AS agent, r.status, r.offered_at, r.expires_at, \
                 r.responded_at, t.completed_at FROM \"{schema}\".reservation r JOIN \"{schema}\".task t ON t.id = r.task_id"
            ),
        ))
        .await
        .unwrap();
    let mut by_agent: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    let mut by_task: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    let mut accepted: HashMap<String, usize> = HashMap::new();
    let (mut timed_out, mut late, mut across_the_kill) = (0, Vec::new(), 0);
    for row in rows {
        let task: String = row.try_get("", "task").unwrap();
        let agent: String = row.try_get("", "agent").unwrap();
        let status: String = row.try_get("", "status").unwrap();
        let offered: Option<DateTime<Utc>> = row.try_get("", "offered_at").unwrap();
        let expires: Option<DateTime<Utc>> = row.try_get("", "expires_at").unwrap();
        let responded: Option<DateTime<Utc>> = row.try_get("", "responded_at").unwrap();
        let completed: Option<DateTime<Utc>> = row.try_get("", "completed_at").unwrap();
        let end = if status == "accepted" {
            *accepted.entry(task.clone()).or_default() += 1;
            at(&completed)
        } else {
            at(&responded)
        };
        if status == "timed_out" {
            timed_out += 1;
            let overdue = at(&responded) - at(&expires);
            assert!(overdue >= 0, "a timeout fired early");
            late.push(overdue);
        }
        if offered.is_some_and(|o| o < killed_at) && responded.is_some_and(|r| r > killed_at) {
            across_the_kill += 1;
        }
        by_agent.entry(agent).or_default().push((at(&offered), end));
        by_task.entry(task).or_default().push((at(&offered), end));
    }
    let overlapping = |spans: &mut Vec<(i64, i64)>| {
        spans.sort_unstable();
        spans
            .windows(2)
            .filter(|pair| pair[1].0 < pair[0].1)
            .count()
    };
    for (agent, spans) in &mut by_agent {
        assert_eq!(
            overlapping(spans),
            0,
            "agent {agent} held two tasks at once (capacity 1)"
        );
    }
    for (task, spans) in &mut by_task {
        assert_eq!(
            overlapping(spans),
            0,
            "task {task} was offered to two agents at once"
        );
    }
    assert_eq!(accepted.len(), TASKS);
    assert!(
        accepted.values().all(|n| *n == 1),
        "every task accepted once"
    );
    late.sort_unstable();
    let worst = late.last().copied().unwrap_or(0);
    println!(
        "offers: {} timed out (worst {:.2} s after expiry), {across_the_kill} spanned the kill",
        timed_out,
        worst as f64 / 1e6
    );
    assert!(timed_out > 0, "missed offers time out");
    assert!(
        across_the_kill > 0,
        "offers made before the kill were settled after it"
    );
    assert!(
        worst < 6_000_000,
        "a timeout fired {:.1} s late",
        worst as f64 / 1e6
    );

    // The event stream says the same: each task created once, offered to one
    // agent at a time, assigned once, completed once.
    let recording = Recording::start(observer, subscription);
    let recorder = recording.recorder.clone();
    let drained = hotline_testkit::eventually(Duration::from_secs(60), || {
        let recorder = recorder.clone();
        async move {
            recorder
                .events()
                .iter()
                .filter(|e| e.kind == "routing.task.completed")
                .map(|e| e.id)
                .collect::<HashSet<_>>()
                .len()
                >= TASKS
        }
    })
    .await;
    let events = recording.finish().await;
    assert!(drained, "completed events for every task");
    let mut distinct = HashSet::new();
    let mut per_task: BTreeMap<String, Vec<(u64, String, String)>> = BTreeMap::new();
    for event in &events {
        if !distinct.insert(event.id) || !event.kind.starts_with("routing.task.") {
            continue;
        }
        let task = RoutedTask::decode(event.data.as_slice()).unwrap();
        per_task.entry(task.task_id.clone()).or_default().push((
            event.sequence.unwrap_or(0),
            event.kind.clone(),
            task.agent_id,
        ));
    }
    assert_eq!(per_task.len(), TASKS);
    for (task, mut history) in per_task {
        history.sort();
        let count = |kind: &str| history.iter().filter(|(_, k, _)| k == kind).count();
        assert_eq!(
            (
                count("routing.task.created"),
                count("routing.task.assigned"),
                count("routing.task.completed")
            ),
            (1, 1, 1),
            "{task}: {history:?}"
        );
        let mut ringing: Option<String> = None;
        for (_, kind, agent) in &history {
            match kind.as_str() {
                "routing.task.reserved" => {
                    assert!(
                        ringing.is_none(),
                        "{task} offered again while ringing: {history:?}"
                    );
                    ringing = Some(agent.clone());
                }
                "routing.task.timed_out"
                | "routing.task.rejected"
                | "routing.task.withdrawn"
                | "routing.task.assigned" => {
                    assert_eq!(ringing.as_ref(), Some(agent), "{task}: {history:?}");
                    ringing = None;
                }
                _ => {}
            }
        }
    }
    println!(
        "events: {} received, {} distinct",
        events.len(),
        distinct.len()
    );
    for replica in &mut replicas {
        if replica.child.is_some() {
            replica.stop().await;
        }
    }
    identity.stop().await;
}

/// The advertised address of the replica holding the router lease.
/// Offers made and not yet answered.
/// Whether the task's offer rings with more than a second to go before it
/// times out (time enough to kill the router while it does).
async fn fresh_offer(db: &DatabaseConnection, infra: &Infra, task: &str) -> bool {
    let row = db
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            format!(
                "SELECT count(*) AS ringing FROM \"{}_routing\".reservation WHERE task_id = '{task}' \
                 AND responded_at IS NULL AND expires_at > now() + interval '1 second'",
                infra.run_id
            ),
        ))
        .await
        .unwrap()
        .expect("a count");
    row.try_get::<i64>("", "ringing").unwrap() > 0
}

async fn leader_address(infra: &Infra) -> String {
    let db = Database::connect(&infra.database_url).await.unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            format!(
                "SELECT address FROM \"{}_routing\".lease WHERE name = 'routing.router' AND expires_at_ms > (extract(epoch from clock_timestamp()) * 1000)::bigint",
                infra.run_id
            ),
        ))
        .await
        .unwrap()
        .expect("a replica holds the router");
    row.try_get("", "address").unwrap()
}
