//! Screen-pop benchmark (`make bench-lookup`): identity as its own `hotline
//! serve` process (release), on PostgreSQL + Redis and on the embedded default,
//! with 10,000 customers (one household in fifty sharing a landline), an agent
//! client's token and the cache warm. This process is the load: each connection
//! asks its next lookup once it has read the whole answer and checked it holds
//! the candidates the number has. `redis-benchmark` GET, from the same run, is
//! the machine's reference.
//!
//! HOTLINE_BENCH_CUSTOMERS (10,000) and HOTLINE_BENCH_SECONDS (10 per phase)
//! change the run.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use anyhow::Context;
use hotline_proto::identity::v1::{
    LookupByPhoneRequest, identity_service_client::IdentityServiceClient,
};
use hotline_system_tests::{
    ADMIN, env_number, in_process,
    population::{self, seeded_phone, shared_landline},
    quantile,
    suite::{self, Server},
    token,
};
use hotline_testkit::{Backends, Infra};
use rand::Rng;

/// The targets on this machine: throughput against redis-benchmark
/// GET at the same connection count, and p99 with 4 connections.
const SHARE_OF_REDIS: f64 = 0.3;
const P99_AT_4_MS: f64 = 2.0;

#[derive(Clone, Copy, PartialEq)]
enum Wire {
    Rest,
    Grpc,
}

#[derive(Clone, Copy)]
enum Numbers {
    /// Customers' own mobiles: one candidate each.
    Mobiles,
    /// Shared landlines: two candidates each.
    Landlines,
}

struct Phase {
    wire: Wire,
    numbers: Numbers,
    connections: usize,
}

struct Measured {
    lookups: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    failures: u64,
    hit_ratio: Option<f64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let customers = env_number("HOTLINE_BENCH_CUSTOMERS", 10_000);
    let seconds = env_number("HOTLINE_BENCH_SECONDS", 10);
    let redis_at = |clients| redis_benchmark_get(&hotline_testkit::redis_url(), clients);
    let reference = [(4, redis_at(4)?), (16, redis_at(16)?)];
    println!(
        "redis-benchmark GET on this machine: {:.0}/s with 4 clients, {:.0}/s with 16",
        reference[0].1, reference[1].1
    );
    let phases = [
        (Wire::Rest, Numbers::Mobiles, 4),
        (Wire::Rest, Numbers::Mobiles, 16),
        (Wire::Rest, Numbers::Landlines, 4),
        (Wire::Grpc, Numbers::Mobiles, 4),
        (Wire::Grpc, Numbers::Mobiles, 16),
    ]
    .map(|(wire, numbers, connections)| Phase {
        wire,
        numbers,
        connections,
    });
    let mut verdicts = Vec::new();
    for backends in [Backends::Real, Backends::Embedded] {
        let infra = match backends {
            Backends::Real => Infra::real()
                .await
                .context("PostgreSQL, Redis and RabbitMQ are needed (make infra)")?,
            Backends::Embedded => Infra::embedded(),
        };
        let name = match backends {
            Backends::Real => "PostgreSQL + Redis",
            Backends::Embedded => "embedded (SQLite, in-process cache)",
        };
        let mut config = in_process::config(&infra)?;
        // The key the server process is given, on the embedded backends too.
        config.identity.pii_key = hotline_kit::config::Secret::new(suite::PII_KEY);
        population::seed(&config, customers, |_| ()).await?;
        // The embedded default is one process with every service, as `make run`.
        let targets = match backends {
            Backends::Real => "identity",
            Backends::Embedded => "all",
        };
        let mut server = Server::start(targets, &infra.data_dir(), &infra.process_env())?;
        let client = reqwest::Client::new();
        server.ready(&client).await?;
        let agent = agent_token(&client, &server.http).await?;
        warm(&server.http, &agent, customers).await?;
        println!("\nidentity on {name}: {customers} customers, cache warm, {seconds} s per phase");
        let mut rest = Vec::new();
        for phase in &phases {
            let measured = run(&server, &agent, customers, phase, seconds).await?;
            println!(
                "  {:<4} {:<9} {:>2} connections: {:>7.0} lookups/s  p50 {:>5.2} ms  p99 {:>5.2} ms  \
                 ({} lookups, {} failed, cache hits {})",
                match phase.wire {
                    Wire::Rest => "REST",
                    Wire::Grpc => "gRPC",
                },
                match phase.numbers {
                    Numbers::Mobiles => "mobiles",
                    Numbers::Landlines => "landlines",
                },
                phase.connections,
                measured.per_second,
                measured.p50_ms,
                measured.p99_ms,
                measured.lookups,
                measured.failures,
                measured
                    .hit_ratio
                    .map_or("unknown".to_owned(), |r| format!("{:.1} %", r * 100.0)),
            );
            if phase.wire == Wire::Rest && matches!(phase.numbers, Numbers::Mobiles) {
                rest.push((phase.connections, measured));
            }
        }
        for (connections, measured) in &rest {
            let redis = reference
                .iter()
                .find(|(clients, _)| clients == connections)
                .map_or(f64::NAN, |(_, figure)| *figure);
            let share = measured.per_second / redis;
            let p99_ok = *connections != 4 || measured.p99_ms <= P99_AT_4_MS;
            verdicts.push(format!(
                "{name}, REST, {connections} connections: {share:.2} × redis-benchmark GET \
                 (target ≥ {SHARE_OF_REDIS}){}: {}",
                if *connections == 4 {
                    format!(
                        ", p99 {:.2} ms (target ≤ {P99_AT_4_MS} ms)",
                        measured.p99_ms
                    )
                } else {
                    String::new()
                },
                if share >= SHARE_OF_REDIS && p99_ok && measured.failures == 0 {
                    "met"
                } else {
                    "missed"
                }
            ));
        }
        drop(server);
    }
    println!();
    for verdict in verdicts {
        println!("{verdict}");
    }
    Ok(())
}

/// GETs per second `redis-benchmark` reaches with `clients` connections.
fn redis_benchmark_get(url: &str, clients: u32) -> anyhow::Result<f64> {
    let url = reqwest::Url::parse(url)?;
    let output = Command::new("redis-benchmark")
        .args(["-h", url.host_str().unwrap_or("127.0.0.1")])
        .args(["-p", &url.port().unwrap_or(6379).to_string()])
        .args([
            "-t",
            "get",
            "-n",
            "400000",
            "-c",
            &clients.to_string(),
            "-q",
        ])
        .output()
        .context("redis-benchmark is needed (Debian: redis-tools)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "GET: 88105.73 requests per second, p50=0.095 msec"
    text.split(['\r', '\n'])
        .rev()
        .find_map(|line| line.trim().strip_prefix("GET: "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|figure| figure.parse().ok())
        .with_context(|| format!("no GET figure in redis-benchmark's output: {text}"))
}

/// A token of a client with the agent role, as an agent desktop holds.
async fn agent_token(client: &reqwest::Client, http: &str) -> anyhow::Result<String> {
    let admin = token(client, http, ADMIN.0, ADMIN.1).await?;
    let agent: serde_json::Value = client
        .post(format!("{http}/api/v1/clients"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "bench agent desktop", "roles": ["agent"]}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let field = |name: &str| agent[name].as_str().unwrap_or_default().to_owned();
    token(client, http, &field("client_id"), &field("client_secret")).await
}

/// Every number once, so the phases measure a warm cache.
async fn warm(http: &str, token: &str, customers: u64) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let numbers: Vec<(String, usize)> = (0..customers)
        .map(|index| (seeded_phone(index), 1))
        .chain((0..customers).filter_map(|index| shared_landline(index).map(|n| (n, 2))))
        .collect();
    for chunk in numbers.chunks(16) {
        let asked = chunk
            .iter()
            .map(|(number, expected)| rest_lookup(&client, http, token, number, *expected));
        for outcome in futures::future::join_all(asked).await {
            outcome?;
        }
    }
    Ok(())
}

/// One lookup over REST, its whole answer read: an error unless it is 200 with
/// `expected` candidates.
async fn rest_lookup(
    client: &reqwest::Client,
    http: &str,
    token: &str,
    phone: &str,
    expected: usize,
) -> anyhow::Result<()> {
    let response = client
        .get(format!("{http}/api/v1/customers/lookup"))
        .query(&[("phone", phone)])
        .bearer_auth(token)
        .send()
        .await?;
    let status = response.status();
    let body = response.bytes().await?;
    anyhow::ensure!(
        status == 200,
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    let answer: serde_json::Value = serde_json::from_slice(&body)?;
    let found = answer["candidates"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(
        found == expected,
        "{phone}: {found} candidates, not {expected}"
    );
    Ok(())
}

async fn run(
    server: &Server,
    token: &str,
    customers: u64,
    phase: &Phase,
    seconds: u64,
) -> anyhow::Result<Measured> {
    let landlines: Vec<String> = (0..customers).filter_map(shared_landline).collect();
    let before = cache_hits(&server.http).await;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for _ in 0..phase.connections {
        let (http, grpc_url, token) = (server.http.clone(), server.grpc.clone(), token.to_owned());
        let (wire, numbers, landlines) = (phase.wire, phase.numbers, landlines.clone());
        workers.push(tokio::spawn(async move {
            // One connection per worker, reused for every lookup.
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()?;
            let mut grpc = match wire {
                Wire::Grpc => Some(IdentityServiceClient::connect(grpc_url).await?),
                Wire::Rest => None,
            };
            let authorization: tonic::metadata::MetadataValue<_> =
                format!("Bearer {token}").parse()?;
            let mut latencies = Vec::new();
            let mut failures = 0u64;
            while Instant::now() < deadline {
                let (phone, expected) = match numbers {
                    Numbers::Mobiles => (seeded_phone(rand::rng().random_range(0..customers)), 1),
                    Numbers::Landlines => (
                        landlines[rand::rng().random_range(0..landlines.len())].clone(),
                        2,
                    ),
                };
                let start = Instant::now();
                let outcome = match &mut grpc {
                    Some(grpc) => {
                        let mut request = tonic::Request::new(LookupByPhoneRequest { phone });
                        request
                            .metadata_mut()
                            .insert("authorization", authorization.clone());
                        match grpc.lookup_by_phone(request).await {
                            Ok(answer) if answer.get_ref().candidates.len() == expected => Ok(()),
                            Ok(answer) => Err(anyhow::anyhow!(
                                "{} candidates, not {expected}",
                                answer.get_ref().candidates.len()
                            )),
                            Err(status) => Err(status.into()),
                        }
                    }
                    None => rest_lookup(&client, &http, &token, &phone, expected).await,
                };
                match outcome {
                    Ok(()) => latencies.push(start.elapsed().as_micros() as u64),
                    Err(_) => failures += 1,
                }
            }
            anyhow::Ok((latencies, failures))
        }));
    }
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut failures = 0;
    for worker in workers {
        let (mut more, failed) = worker.await??;
        latencies.append(&mut more);
        failures += failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let after = cache_hits(&server.http).await;
    let hit_ratio = before.zip(after).and_then(|((h0, t0), (h1, t1))| {
        let asked = t1 - t0;
        (asked > 0.0).then(|| (h1 - h0) / asked)
    });
    Ok(Measured {
        lookups: latencies.len(),
        per_second: latencies.len() as f64 / elapsed,
        p50_ms: quantile(&latencies, 0.50) as f64 / 1000.0,
        p99_ms: quantile(&latencies, 0.99) as f64 / 1000.0,
        failures,
        hit_ratio,
    })
}

/// identity's cache gets so far from `/metrics`: (hits, all).
async fn cache_hits(http: &str) -> Option<(f64, f64)> {
    let text = reqwest::get(format!("{http}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let (mut hits, mut all) = (0.0, 0.0);
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("hotline_cache_operations_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        if !labels.contains("operation=\"get\"") || !labels.contains("service=\"identity\"") {
            continue;
        }
        let value: f64 = value.trim().parse().ok()?;
        all += value;
        if labels.contains("outcome=\"hit\"") {
            hits += value;
        }
    }
    (all > 0.0).then_some((hits, all))
}
