//! Screen-pop benchmark: starts identity on PostgreSQL + Redis (as configured by
//! `make bench`), then fires lookups by calling number from concurrent clients
//! and prints lookups/s, p50 and p99 per phase. Run `make seed` first.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use hotline::Target;
use hotline_proto::identity::v1::{
    LookupByPhoneRequest, identity_service_client::IdentityServiceClient,
};
use hotline_system_tests::{bench_config, env_number, seeded_phone, token};
use rand::Rng;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy)]
enum Wire {
    Rest,
    Grpc,
}

struct Phase {
    name: &'static str,
    wire: Wire,
    /// Numbers are drawn from the first `population` seeded customers.
    population: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let customers = env_number("HOTLINE_BENCH_CUSTOMERS", 1_000_000);
    let concurrency = env_number("HOTLINE_BENCH_CONCURRENCY", 32) as usize;
    let seconds = env_number("HOTLINE_BENCH_SECONDS", 15);
    let mut config = bench_config()?;
    config.server.http_addr = "127.0.0.1:0".parse()?;
    config.server.grpc_addr = "127.0.0.1:0".parse()?;
    config.database.max_connections = 32;
    let shutdown = CancellationToken::new();
    let started = hotline::start(&config, &[Target::Identity], shutdown.clone()).await?;
    let http = format!("http://{}", started.running.http_addr);
    let grpc_url = format!("http://{}", started.running.grpc_addr);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let admin = token(
        &client,
        &http,
        &config.bootstrap_client_id,
        config.bootstrap_client_secret.expose(),
    )
    .await?;
    // Screen pops are an agent's call: an agent client's token, as a desktop would hold.
    let agent: serde_json::Value = client
        .post(format!("{http}/api/v1/clients"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "bench agent desktop", "roles": ["agent"]}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = Arc::new(
        token(
            &client,
            &http,
            agent["client_id"].as_str().unwrap_or_default(),
            agent["client_secret"].as_str().unwrap_or_default(),
        )
        .await?,
    );
    let probe: serde_json::Value = client
        .get(format!("{http}/api/v1/customers/lookup"))
        .query(&[("phone", seeded_phone(customers - 1))])
        .bearer_auth(token.as_str())
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(
        probe["candidates"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "customer {} not found: run `make seed` first",
        customers - 1
    );
    println!(
        "identity on PostgreSQL + Redis, {customers} customers, {concurrency} concurrent agent clients, {seconds}s per phase"
    );
    let phases = [
        Phase {
            name: "REST, any of the population (mostly cache misses)",
            wire: Wire::Rest,
            population: customers,
        },
        Phase {
            name: "REST, 10,000 recurring callers (cache hits)",
            wire: Wire::Rest,
            population: 10_000.min(customers),
        },
        Phase {
            name: "gRPC, 10,000 recurring callers (cache hits)",
            wire: Wire::Grpc,
            population: 10_000.min(customers),
        },
    ];
    for phase in phases {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut workers = Vec::new();
        for _ in 0..concurrency {
            let (client, token, http, grpc_url) = (
                client.clone(),
                token.clone(),
                http.clone(),
                grpc_url.clone(),
            );
            let (wire, population) = (phase.wire, phase.population);
            workers.push(tokio::spawn(async move {
                let mut grpc = match wire {
                    Wire::Grpc => Some(IdentityServiceClient::connect(grpc_url).await?),
                    Wire::Rest => None,
                };
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let phone = seeded_phone(rand::rng().random_range(0..population));
                    let start = Instant::now();
                    let ok = match (&mut grpc, wire) {
                        (Some(grpc), Wire::Grpc) => {
                            let mut request = tonic::Request::new(LookupByPhoneRequest { phone });
                            request
                                .metadata_mut()
                                .insert("authorization", format!("Bearer {token}").parse()?);
                            grpc.lookup_by_phone(request).await.is_ok()
                        }
                        _ => client
                            .get(format!("{http}/api/v1/customers/lookup"))
                            .query(&[("phone", phone)])
                            .bearer_auth(token.as_str())
                            .send()
                            .await
                            .is_ok_and(|r| r.status().is_success()),
                    };
                    if ok {
                        latencies.push(start.elapsed());
                    } else {
                        errors += 1;
                    }
                }
                anyhow::Ok((latencies, errors))
            }));
        }
        let phase_start = Instant::now();
        let mut latencies = Vec::new();
        let mut errors = 0;
        for worker in workers {
            let (mut worker_latencies, worker_errors) = worker.await??;
            latencies.append(&mut worker_latencies);
            errors += worker_errors;
        }
        let elapsed = phase_start.elapsed().as_secs_f64();
        latencies.sort_unstable();
        let percentile = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        println!(
            "{:<52} {:>8.0} lookups/s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} lookups, {} errors)",
            phase.name,
            latencies.len() as f64 / elapsed,
            percentile(0.50),
            percentile(0.99),
            latencies.len(),
            errors
        );
    }
    started.running.shutdown();
    started.running.wait().await?;
    Ok(())
}
