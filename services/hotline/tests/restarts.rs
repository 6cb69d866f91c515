//! A rolling restart under load: two identity processes on PostgreSQL + Redis +
//! RabbitMQ, each stopped with SIGTERM and started again in turn, ten times,
//! while clients keep making screen pops and customer writes through a balancer
//! that, like a Kubernetes Service, sends only to processes whose `/readyz` says
//! ready and retries a refused connection on the other process. No request may
//! fail; every write's event must reach the broker exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

mod common;

use common::{Replica, wait_ready};
use hotline_testkit::{Infra, Recording, broker_queue};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const ADMIN: (&str, &str) = ("restart-admin", "restart-admin-secret-0123456789");
const ROUNDS: usize = 10;
const WORKERS: usize = 3;

#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    retried: AtomicU64,
    failures: Mutex<Vec<String>>,
    /// Customer id → the versions its writes produced, one event each.
    writes: Mutex<HashMap<String, Vec<i64>>>,
}

/// The balancer: round robin over the replicas seen ready; a refused connection
/// (the process is gone) is retried on the other one.
struct Balancer {
    replicas: Vec<(String, Arc<AtomicBool>)>,
    client: reqwest::Client,
    next: AtomicU64,
    tally: Arc<Tally>,
}

impl Balancer {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Option<Value> {
        self.tally.requests.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let start = self.next.fetch_add(1, Ordering::Relaxed) as usize;
            let pick = (0..self.replicas.len())
                .map(|offset| &self.replicas[(start + offset) % self.replicas.len()])
                .find(|(_, ready)| ready.load(Ordering::Relaxed));
            let Some((base, ready)) = pick else {
                assert!(Instant::now() < deadline, "no replica ready for 30 s");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            let mut request = self
                .client
                .request(method.clone(), format!("{base}{path}"))
                .bearer_auth(token);
            if let Some(body) = body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(response) if response.status().is_success() => {
                    return Some(response.json().await.unwrap());
                }
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    self.tally
                        .failures
                        .lock()
                        .unwrap()
                        .push(format!("{method} {path} on {base}: {status} {text}"));
                    return None;
                }
                Err(error) if error.is_connect() => {
                    ready.store(false, Ordering::Relaxed);
                    self.tally.retried.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    self.tally
                        .failures
                        .lock()
                        .unwrap()
                        .push(format!("{method} {path} on {base}: {error}"));
                    return None;
                }
            }
        }
    }
}

/// Creates customers, pops their screens and updates them until `stop`.
async fn client_loop(
    balancer: Arc<Balancer>,
    token: String,
    worker: usize,
    stop: CancellationToken,
) {
    let mut n = 0u32;
    while !stop.is_cancelled() {
        n += 1;
        let phone = format!("1390{worker}{n:06}");
        let Some(created) = balancer
            .send(
                reqwest::Method::POST,
                "/api/v1/customers",
                &token,
                Some(&json!({"name": "重启", "phones": [{"number": phone}]})),
            )
            .await
        else {
            continue;
        };
        let id = created["id"].as_str().unwrap().to_owned();
        balancer
            .tally
            .writes
            .lock()
            .unwrap()
            .insert(id.clone(), vec![1]);
        balancer
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/customers/lookup?phone={phone}"),
                &token,
                None,
            )
            .await;
        if let Some(updated) = balancer
            .send(
                reqwest::Method::PATCH,
                &format!("/api/v1/customers/{id}"),
                &token,
                Some(&json!({"vip_level": 1})),
            )
            .await
        {
            let version = updated["version"].as_i64().unwrap();
            balancer
                .tally
                .writes
                .lock()
                .unwrap()
                .entry(id)
                .or_default()
                .push(version);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_fails_no_request_and_loses_no_event() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let Some(infra) = Infra::real().await else {
        return;
    };
    // Counts from the broker: a queue of our own, there before the first write.
    let (observer, subscription) = broker_queue(
        &infra.amqp_url,
        "observer.restarts",
        &["identity.customer.*"],
    )
    .await;

    let data_dir = infra.data_dir();
    let admin = [
        ("HOTLINE_BOOTSTRAP_CLIENT_ID", ADMIN.0),
        ("HOTLINE_BOOTSTRAP_CLIENT_SECRET", ADMIN.1),
    ];
    let mut replicas = [
        Replica::new(&infra, "identity", &admin),
        Replica::new(&infra, "identity", &admin),
    ];
    let probe = reqwest::Client::new();
    // The first start migrates; the second joins the migrated schema.
    for replica in &mut replicas {
        replica.start(&data_dir);
        wait_ready(&probe, replica, &data_dir).await;
    }
    let flags: Vec<Arc<AtomicBool>> = replicas
        .iter()
        .map(|_| Arc::new(AtomicBool::new(true)))
        .collect();
    let tally = Arc::new(Tally::default());
    let balancer = Arc::new(Balancer {
        replicas: replicas
            .iter()
            .zip(&flags)
            .map(|(replica, flag)| (replica.http.clone(), flag.clone()))
            .collect(),
        // A connection per request, as many clients behind a Service have.
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        next: AtomicU64::new(0),
        tally: tally.clone(),
    });
    let token = hotline_testkit::client_token(&probe, &replicas[0].http, ADMIN.0, ADMIN.1).await;

    // What the balancer knows of readiness, refreshed like an endpoints controller.
    let stop = CancellationToken::new();
    let watcher = {
        let urls: Vec<String> = replicas.iter().map(|r| r.http.clone()).collect();
        let (flags, stop, probe) = (flags.clone(), stop.clone(), probe.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                for (url, flag) in urls.iter().zip(&flags) {
                    let ready = probe
                        .get(format!("{url}/readyz"))
                        .timeout(Duration::from_millis(300))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    flag.store(ready, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            tokio::spawn(client_loop(
                balancer.clone(),
                token.clone(),
                worker,
                stop.clone(),
            ))
        })
        .collect();

    let started = Instant::now();
    for _round in 0..ROUNDS {
        for replica in &mut replicas {
            tokio::time::sleep(Duration::from_millis(300)).await;
            replica.stop().await;
            replica.start(&data_dir);
            wait_ready(&probe, replica, &data_dir).await;
        }
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    for worker in workers {
        worker.await.unwrap();
    }
    watcher.await.unwrap();
    for replica in &mut replicas {
        replica.stop().await;
    }

    let failures = tally.failures.lock().unwrap().clone();
    let requests = tally.requests.load(Ordering::Relaxed);
    let writes = tally.writes.lock().unwrap().clone();
    let expected_events: usize = writes.values().map(Vec::len).sum();
    println!(
        "rolling restart: {} restarts in {:.1} s, {requests} requests, {} retried on a refused connection, {} failed, {expected_events} writes",
        ROUNDS * 2,
        elapsed.as_secs_f64(),
        tally.retried.load(Ordering::Relaxed),
        failures.len()
    );
    assert!(failures.is_empty(), "failed requests: {failures:#?}");
    assert!(
        requests > 100,
        "too little load to mean anything: {requests}"
    );

    // Every write's event, once: counted from the broker after both stopped.
    let recording = Recording::start(observer, subscription);
    let deadline = Instant::now() + Duration::from_secs(60);
    while recording.recorder.len() < expected_events && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = recording.finish().await;
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for event in &events {
        let subject = event.subject.clone().unwrap_or_default();
        *seen.entry((subject, event.id.to_string())).or_default() += 1;
    }
    let duplicated = seen.values().filter(|count| **count > 1).count();
    let mut per_customer: HashMap<String, usize> = HashMap::new();
    for (subject, _) in seen.keys() {
        *per_customer.entry(subject.clone()).or_default() += 1;
    }
    let lost: Vec<_> = writes
        .iter()
        .filter(|(id, versions)| per_customer.get(*id).copied().unwrap_or(0) < versions.len())
        .collect();
    println!(
        "events: {} received, {} distinct, {duplicated} duplicated, {} customers short of events",
        events.len(),
        seen.len(),
        lost.len()
    );
    if duplicated > 0 || !lost.is_empty() {
        for event in events
            .iter()
            .filter(|e| seen[&(e.subject.clone().unwrap_or_default(), e.id.to_string())] > 1)
        {
            println!(
                "duplicate: {} sequence {:?} redeliveries {}",
                event.id, event.sequence, event.redeliveries
            );
        }
        for replica in &replicas {
            let log = std::fs::read_to_string(replica.log(&data_dir)).unwrap_or_default();
            for line in log
                .lines()
                .filter(|line| line.contains("WARN") || line.contains("ERROR"))
            {
                println!("{}: {line}", replica.http);
            }
        }
    }
    assert_eq!(duplicated, 0, "events published twice");
    assert!(lost.is_empty(), "events lost for {lost:?}");
    assert_eq!(seen.len(), expected_events);
}
