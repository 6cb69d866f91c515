//! Screen-pop benchmark (`make bench-lookup`): identity as its own `hotline
//! serve` process (release), on PostgreSQL + Redis and on the embedded default,
//! with 10,000 customers (one household in fifty sharing a landline), an agent
//! client's token and the cache warm. This process is the load, from one thread
//! like redis-benchmark's: each connection asks its next lookup once it has
//! read the whole answer and checked it holds the candidates the number has.
//! `redis-benchmark` GET, from the same run, is the machine's reference.
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

impl Numbers {
    /// Every number of the kind among `customers`, with its candidate count.
    fn asked(self, customers: u64) -> Vec<(String, usize)> {
        match self {
            Self::Mobiles => (0..customers).map(|i| (seeded_phone(i), 1)).collect(),
            Self::Landlines => (0..customers)
                .filter_map(shared_landline)
                .map(|number| (number, 2))
                .collect(),
        }
    }
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
    /// identity's cache reads during the phase, by outcome.
    cache: Option<CacheReads>,
}

#[derive(Clone, Copy, Default)]
struct CacheReads {
    hits: f64,
    misses: f64,
    /// Errors and reads skipped while the circuit was open.
    failed: f64,
}

impl CacheReads {
    fn since(self, before: Self) -> Self {
        Self {
            hits: self.hits - before.hits,
            misses: self.misses - before.misses,
            failed: self.failed - before.failed,
        }
    }

    fn describe(self) -> String {
        let all = self.hits + self.misses + self.failed;
        if all == 0.0 {
            return "no cache reads".to_owned();
        }
        format!(
            "cache hits {:.1} %, {} misses, {} failed",
            self.hits / all * 100.0,
            self.misses,
            self.failed
        )
    }
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
                 ({} lookups, {} failed, {})",
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
                    .cache
                    .map_or("cache reads unknown".to_owned(), CacheReads::describe),
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
    let mut numbers = Numbers::Mobiles.asked(customers);
    numbers.append(&mut Numbers::Landlines.asked(customers));
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
    let status = response.status().as_u16();
    let body = response.bytes().await?;
    checked(status, &body, expected).with_context(|| phone.to_owned())
}

/// An error unless the answer is a 200 with `expected` candidates. The whole
/// answer is parsed (it must be valid JSON); only the candidates are counted.
fn checked(status: u16, body: &[u8], expected: usize) -> anyhow::Result<()> {
    anyhow::ensure!(status == 200, "{status}: {}", String::from_utf8_lossy(body));
    let found = serde_json::from_slice::<Answer>(body)?.candidates.len();
    anyhow::ensure!(found == expected, "{found} candidates, not {expected}");
    Ok(())
}

#[derive(serde::Deserialize)]
struct Answer {
    candidates: Vec<serde::de::IgnoredAny>,
}

/// One phase's load, driven from one thread (as redis-benchmark drives its
/// clients), so the load costs the machine what a lean client costs.
struct Load {
    wire: Wire,
    connections: usize,
    /// The server's `host:port` and gRPC URL.
    http_addr: String,
    grpc_url: String,
    bearer: String,
    /// What to ask for (a REST path with its query, or the number for gRPC),
    /// each with its candidate count.
    numbers: Vec<(String, usize)>,
    seconds: u64,
}

/// What one connection measured: microseconds per answered lookup, failures.
type Tally = (Vec<u64>, u64);

impl Load {
    fn run(self) -> anyhow::Result<(Tally, f64)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let load = std::sync::Arc::new(self);
            let deadline = Instant::now() + Duration::from_secs(load.seconds);
            let mut connections = tokio::task::JoinSet::new();
            for _ in 0..load.connections {
                let load = load.clone();
                connections.spawn(async move {
                    match load.wire {
                        Wire::Rest => load.rest_connection(deadline).await,
                        Wire::Grpc => load.grpc_connection(deadline).await,
                    }
                });
            }
            let started = Instant::now();
            let (mut latencies, mut failures) = (Vec::new(), 0);
            while let Some(done) = connections.join_next().await {
                let (mut more, failed) = done??;
                latencies.append(&mut more);
                failures += failed;
            }
            Ok(((latencies, failures), started.elapsed().as_secs_f64()))
        })
    }

    fn pick(&self) -> &(String, usize) {
        &self.numbers[rand::rng().random_range(0..self.numbers.len())]
    }

    /// One kept-alive HTTP/1.1 connection; each lookup is asked once the
    /// previous answer has been read whole and checked.
    async fn rest_connection(&self, deadline: Instant) -> anyhow::Result<Tally> {
        use http_body_util::{BodyExt, Empty};
        let stream = tokio::net::TcpStream::connect(&self.http_addr).await?;
        stream.set_nodelay(true)?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake::<
            _,
            Empty<hyper::body::Bytes>,
        >(hyper_util::rt::TokioIo::new(stream))
        .await?;
        tokio::spawn(connection);
        let (mut latencies, mut failures) = (Vec::new(), 0);
        while Instant::now() < deadline {
            let (path, expected) = self.pick();
            let request = hyper::Request::get(path.as_str())
                .header(hyper::header::HOST, &self.http_addr)
                .header(hyper::header::AUTHORIZATION, &self.bearer)
                .body(Empty::new())?;
            let start = Instant::now();
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            match checked(status, &body, *expected) {
                Ok(()) => latencies.push(start.elapsed().as_micros() as u64),
                Err(_) => failures += 1,
            }
        }
        Ok((latencies, failures))
    }

    async fn grpc_connection(&self, deadline: Instant) -> anyhow::Result<Tally> {
        let mut grpc = IdentityServiceClient::connect(self.grpc_url.clone()).await?;
        let authorization: tonic::metadata::MetadataValue<_> = self.bearer.parse()?;
        let (mut latencies, mut failures) = (Vec::new(), 0);
        while Instant::now() < deadline {
            let (phone, expected) = self.pick();
            let mut request = tonic::Request::new(LookupByPhoneRequest {
                phone: phone.clone(),
            });
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
            let start = Instant::now();
            match grpc.lookup_by_phone(request).await {
                Ok(answer) if answer.get_ref().candidates.len() == *expected => {
                    latencies.push(start.elapsed().as_micros() as u64);
                }
                _ => failures += 1,
            }
        }
        Ok((latencies, failures))
    }
}

async fn run(
    server: &Server,
    token: &str,
    customers: u64,
    phase: &Phase,
    seconds: u64,
) -> anyhow::Result<Measured> {
    // What each request names, built before the clock starts: the REST path
    // with its query, or the number gRPC sends.
    let numbers = phase
        .numbers
        .asked(customers)
        .into_iter()
        .map(|(phone, expected)| match phase.wire {
            Wire::Rest => {
                let phone: String =
                    url::form_urlencoded::byte_serialize(phone.as_bytes()).collect();
                (format!("/api/v1/customers/lookup?phone={phone}"), expected)
            }
            Wire::Grpc => (phone, expected),
        })
        .collect();
    let load = Load {
        wire: phase.wire,
        connections: phase.connections,
        http_addr: server
            .http
            .strip_prefix("http://")
            .unwrap_or(&server.http)
            .to_owned(),
        grpc_url: server.grpc.clone(),
        bearer: format!("Bearer {token}"),
        numbers,
        seconds,
    };
    let before = cache_reads(&server.http).await;
    let ((mut latencies, failures), elapsed) =
        tokio::task::spawn_blocking(move || load.run()).await??;
    latencies.sort_unstable();
    let after = cache_reads(&server.http).await;
    let cache = before.zip(after).map(|(before, after)| after.since(before));
    Ok(Measured {
        lookups: latencies.len(),
        per_second: latencies.len() as f64 / elapsed,
        p50_ms: quantile(&latencies, 0.50) as f64 / 1000.0,
        p99_ms: quantile(&latencies, 0.99) as f64 / 1000.0,
        failures,
        cache,
    })
}

/// identity's cache reads so far, from `/metrics`.
async fn cache_reads(http: &str) -> Option<CacheReads> {
    let text = reqwest::get(format!("{http}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let mut reads = CacheReads::default();
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
        if labels.contains("outcome=\"hit\"") {
            reads.hits += value;
        } else if labels.contains("outcome=\"miss\"") {
            reads.misses += value;
        } else {
            reads.failed += value;
        }
    }
    Some(reads)
}
