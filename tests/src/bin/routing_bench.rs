//! Routing benchmark (`make bench`): 10,000 agents signed in across 50 queues,
//! tasks arriving as fast as the router takes them, from a load generator in
//! this process against `hotline serve` processes — the embedded default, one
//! routing replica on PostgreSQL, and three. It prints assignments per second
//! and p50/p99 from task creation to offer (each answer is read: a task is
//! counted once its answer says it was offered to an agent), beside pgbench's
//! rate of single-row insert commits with 16 clients on the same PostgreSQL in
//! the same run: the most a design that commits once per assignment could reach.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use hotline_system_tests::{
    ADMIN, env_number, quantile,
    suite::{Server, pgbench},
    token,
};
use hotline_testkit::Infra;
use rand::Rng;
use serde_json::{Value, json};

struct Setup {
    name: &'static str,
    /// Where tokens come from: identity's REST address.
    identity: String,
    /// Where the load goes: every routing replica's REST address.
    replicas: Vec<String>,
    _servers: Vec<Server>,
}

/// 50 queues and 10,000 agents (work items, 10 at a time each), signed in.
async fn populate(
    client: &reqwest::Client,
    http: &str,
    token: &str,
    queues: usize,
    agents: usize,
) -> anyhow::Result<()> {
    for q in 0..queues {
        client
            .post(format!("{http}/api/v1/queues"))
            .bearer_auth(token)
            .json(&json!({"name": format!("q{q}"), "target": format!("group == \"q{q}\""), "offer_timeout_seconds": 600}))
            .send()
            .await?
            .error_for_status()?;
    }
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (client, http, token, next) = (
            client.clone(),
            http.to_owned(),
            token.to_owned(),
            next.clone(),
        );
        workers.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed) as usize;
                if index >= agents {
                    return anyhow::Ok(());
                }
                let created: Value = client
                    .post(format!("{http}/api/v1/agents"))
                    .bearer_auth(&token)
                    .json(&json!({"name": format!("agent {index}"), "groups": [format!("q{}", index % queues)], "capacity": {"voice": 0, "work_item": 10}}))
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                let id = created["id"].as_str().context("agent id")?;
                client
                    .post(format!("{http}/api/v1/agents/{id}/sign-in"))
                    .bearer_auth(&token)
                    .send()
                    .await?
                    .error_for_status()?;
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    Ok(())
}

/// The router's own account of a run, from its `/metrics`: mean commit time,
/// the histogram bucket the 99th percentile commit falls in, and commands per
/// commit.
async fn commits(client: &reqwest::Client, replicas: &[String]) -> String {
    let (mut commit_sum, mut commits, mut commands) = (0.0, 0.0, 0.0);
    let mut buckets: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
    for replica in replicas {
        let Ok(response) = client.get(format!("{replica}/metrics")).send().await else {
            continue;
        };
        let Ok(text) = response.text().await else {
            continue;
        };
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            let (Some(name), Some(value)) = (
                parts.next(),
                parts.next().and_then(|v| v.parse::<f64>().ok()),
            ) else {
                continue;
            };
            match name {
                "routing_commit_seconds_sum" => commit_sum += value,
                "routing_commit_seconds_count" => commits += value,
                "routing_batch_commands_sum" => commands += value,
                _ => {
                    if let Some(le) = name
                        .strip_prefix("routing_commit_seconds_bucket{le=\"")
                        .and_then(|rest| rest.strip_suffix("\"}"))
                        && let Ok(bound) = le.parse::<f64>()
                    {
                        buckets.entry(le.to_owned()).or_insert((bound, 0.0)).1 += value;
                    }
                }
            }
        }
    }
    if commits == 0.0 {
        return String::new();
    }
    let mut cumulative: Vec<(f64, f64)> = buckets.into_values().collect();
    cumulative.sort_by(|a, b| a.0.total_cmp(&b.0));
    let p99 = cumulative
        .iter()
        .find(|(_, count)| *count >= commits * 0.99)
        .map_or_else(
            || "over the last bucket".to_owned(),
            |(bound, _)| format!("≤ {} ms", bound * 1000.0),
        );
    format!(
        "  ({:.2} ms per commit, p99 {p99}, {:.1} commands per commit)",
        commit_sum / commits * 1000.0,
        commands / commits
    )
}

struct Figures {
    assignments: u64,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    not_offered: u64,
}

/// `connections` clients creating tasks back to back for `seconds` after a warm-up.
async fn load(
    setup: &Setup,
    token: &str,
    connections: usize,
    queues: usize,
    seconds: u64,
    run: &str,
) -> anyhow::Result<Figures> {
    let warm_up = Duration::from_secs(3);
    let start = Instant::now();
    let (measure_from, measure_to) = (
        start + warm_up,
        start + warm_up + Duration::from_secs(seconds),
    );
    let mut workers = tokio::task::JoinSet::new();
    for connection in 0..connections {
        let base = setup.replicas[connection % setup.replicas.len()].clone();
        let (token, run) = (token.to_owned(), run.to_owned());
        workers.spawn(async move {
            let client = reqwest::Client::builder().pool_max_idle_per_host(1).build()?;
            let mut latencies = Vec::new();
            let mut not_offered = 0u64;
            let mut n = 0u64;
            loop {
                let sent = Instant::now();
                if sent >= measure_to {
                    return anyhow::Ok((latencies, not_offered));
                }
                n += 1;
                let queue = rand::rng().random_range(0..queues);
                let response = client
                    .post(format!("{base}/api/v1/tasks"))
                    .bearer_auth(&token)
                    .json(&json!({"external_id": format!("{run}-{connection}-{n}"), "channel": "work_item", "queue": format!("q{queue}")}))
                    .send()
                    .await?;
                let status = response.status();
                let task: Value = response.json().await?;
                anyhow::ensure!(status == 201, "task refused: {status} {task}");
                let elapsed = sent.elapsed();
                if sent < measure_from {
                    continue;
                }
                if task["status"] == "reserved" && task["reservation"]["agent_id"].is_string() {
                    latencies.push(elapsed.as_micros() as u64);
                } else {
                    not_offered += 1;
                }
            }
        });
    }
    let mut latencies = Vec::new();
    let mut not_offered = 0;
    while let Some(done) = workers.join_next().await {
        let (mine, missed) = done??;
        latencies.extend(mine);
        not_offered += missed;
    }
    latencies.sort_unstable();
    let at = |q: f64| quantile(&latencies, q) as f64 / 1000.0;
    Ok(Figures {
        assignments: latencies.len() as u64,
        per_second: latencies.len() as f64 / seconds as f64,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        not_offered,
    })
}

fn uuid_like() -> String {
    format!("{:x}", rand::rng().random::<u64>())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let agents = env_number("HOTLINE_BENCH_AGENTS", 10_000) as usize;
    let queues = env_number("HOTLINE_BENCH_QUEUES", 50) as usize;
    let connections = env_number("HOTLINE_BENCH_CONNECTIONS", 16) as usize;
    let seconds = env_number("HOTLINE_BENCH_SECONDS", 15);
    let client = reqwest::Client::new();
    // HOTLINE_BENCH_ATTACH=<url>: load a suite that is already running (to
    // profile it), populated unless HOTLINE_BENCH_POPULATE=0.
    if let Ok(url) = std::env::var("HOTLINE_BENCH_ATTACH") {
        let setup = Setup {
            name: "attached",
            identity: url.clone(),
            replicas: vec![url],
            _servers: Vec::new(),
        };
        let token = token(&client, &setup.identity, ADMIN.0, ADMIN.1).await?;
        if env_number("HOTLINE_BENCH_POPULATE", 1) == 1 {
            populate(&client, &setup.identity, &token, queues, agents).await?;
        }
        let run = format!("attached-{}", uuid_like());
        let figures = load(&setup, &token, connections, queues, seconds, &run).await?;
        println!(
            "attached: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
            figures.per_second, figures.p50_ms, figures.p99_ms
        );
        return Ok(());
    }
    let infra = Infra::real()
        .await
        .context("PostgreSQL, RabbitMQ and Redis must be reachable (make infra starts them)")?;
    let reference = pgbench(&infra.database_url, &infra.run_id)?;
    println!(
        "routing: {agents} agents signed in across {queues} queues, {connections} connections creating tasks back to back, {seconds} s measured after 3 s of warm-up"
    );
    println!(
        "pgbench, 16 clients, single-row insert commits: {reference:.0}/s (a quarter: {:.0}/s)",
        reference / 4.0
    );
    println!();
    println!(
        "{:<28} {:>14} {:>9} {:>9} {:>12}",
        "setup", "assignments/s", "p50 ms", "p99 ms", "× pgbench"
    );
    let mut results = Vec::new();
    // HOTLINE_BENCH_SETUPS=embedded,1,3 (the default) picks the setups to run.
    let wanted = std::env::var("HOTLINE_BENCH_SETUPS").unwrap_or_else(|_| "embedded,1,3".into());
    let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
    for (name, routing_replicas) in [
        ("embedded (SQLite)", 0),
        ("PostgreSQL, 1 replica", 1),
        ("PostgreSQL, 3 replicas", 3),
    ] {
        let key = if routing_replicas == 0 {
            "embedded".to_owned()
        } else {
            routing_replicas.to_string()
        };
        if !wanted.contains(&key.as_str()) {
            continue;
        }
        let setup_infra;
        let (dir, env) = if routing_replicas == 0 {
            setup_infra = Infra::embedded();
            (setup_infra.data_dir(), Vec::new())
        } else {
            (
                infra.data_dir().join(format!("r{routing_replicas}")),
                infra.process_env(),
            )
        };
        // Each PostgreSQL setup in schemas of its own.
        let env: Vec<(String, String)> = env
            .into_iter()
            .map(|(n, v)| {
                if n == "HOTLINE_DATABASE__SCHEMA_PREFIX" {
                    (n, format!("{v}r{routing_replicas}_"))
                } else {
                    (n, v)
                }
            })
            .collect();
        let mut servers = Vec::new();
        let setup = if routing_replicas == 0 {
            let mut suite = Server::start("all", &dir, &env)?;
            suite.ready(&client).await?;
            let (identity, replicas) = (suite.http.clone(), vec![suite.http.clone()]);
            servers.push(suite);
            Setup {
                name,
                identity,
                replicas,
                _servers: servers,
            }
        } else {
            let mut identity = Server::start("identity", &dir, &env)?;
            identity.ready(&client).await?;
            let mut peer_env = env.clone();
            peer_env.push(("HOTLINE_PEERS__IDENTITY_GRPC".into(), identity.grpc.clone()));
            peer_env.push(("HOTLINE_PEERS__IDENTITY_HTTP".into(), identity.http.clone()));
            let identity_http = identity.http.clone();
            servers.push(identity);
            // Reporting will consume routing's events; without it every event
            // would come back from the broker as unroutable and be parked.
            infra
                .bind_stand_in_queue("hotline.events", "bench.reporting", "routing.#", 100_000)
                .await
                .map_err(anyhow::Error::msg)?;
            let mut replicas = Vec::new();
            for _ in 0..routing_replicas {
                let mut routing = Server::start("routing", &dir, &peer_env)?;
                routing.ready(&client).await?;
                replicas.push(routing.http.clone());
                servers.push(routing);
            }
            Setup {
                name,
                identity: identity_http,
                replicas,
                _servers: servers,
            }
        };
        let token = token(&client, &setup.identity, ADMIN.0, ADMIN.1).await?;
        populate(&client, &setup.replicas[0], &token, queues, agents).await?;
        let figures = load(
            &setup,
            &token,
            connections,
            queues,
            seconds,
            &format!("{}-{routing_replicas}", infra.run_id),
        )
        .await?;
        println!(
            "{:<28} {:>14.0} {:>9.2} {:>9.2} {:>12.2}{}{}",
            setup.name,
            figures.per_second,
            figures.p50_ms,
            figures.p99_ms,
            figures.per_second / reference,
            if figures.not_offered > 0 {
                format!("  ({} not offered at once)", figures.not_offered)
            } else {
                String::new()
            },
            commits(&client, &setup.replicas).await,
        );
        results.push((setup.name, figures));
        drop(setup);
    }
    println!();
    let one = results
        .iter()
        .find(|(name, _)| name.contains("1 replica"))
        .map(|(_, f)| f.per_second)
        .unwrap_or(0.0);
    let p99 = results
        .iter()
        .find(|(name, _)| name.contains("1 replica"))
        .map(|(_, f)| f.p99_ms)
        .unwrap_or(f64::MAX);
    println!(
        "target: one replica on PostgreSQL ≥ {:.0}/s with p99 ≤ 10 ms: {} ({one:.0}/s, p99 {p99:.2} ms)",
        reference / 4.0,
        if one >= reference / 4.0 && p99 <= 10.0 {
            "met"
        } else {
            "missed"
        }
    );
    let total: u64 = results.iter().map(|(_, f)| f.assignments).sum();
    println!("{total} assignments measured in all");
    Ok(())
}
