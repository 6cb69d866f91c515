//! SMS benchmark (`make bench-sms`): texts to technicians sent over SMPP 3.4
//! by a ticketing replica (`hotline serve`, PostgreSQL + Redis + RabbitMQ) to
//! a stand-in SMSC in this process — first one answering every `submit_sm`
//! at once (the kind of sink Jasmin's figures were measured against), then
//! one answering after 50 ms. The load: supervisors' notices to 1,000
//! technicians each, posted back to back over a few connections, every
//! answer read. A text counts when the SMSC has taken it. Two measures for
//! each SMSC: texts sent while the notices arrive (the whole path, API to
//! SMSC: bound by how fast notices are queued), and a backlog queued while
//! the SMSC stalled, sent once it answers again (the SMPP leg: the rate the
//! target is about). Printed beside Jasmin's figures on this machine kind and
//! pgbench's single-row insert commits from the same run.

use std::time::{Duration, Instant};

use anyhow::Context;
use hotline_system_tests::{
    create, env_number, quantile,
    suite::{TicketingSuite, pgbench},
};
use hotline_testkit::{Infra, Smsc};
use serde_json::{Value, json};

/// Jasmin 0.11.1 on this machine kind, SMPP→SMPP with its consumer prefetch
/// raised to 100, against an asyncio sink SMSC (the measurement).
const JASMIN_BEST: f64 = 1_077.0;
/// One UCS-2 part: a text is a message.
const NOTICE: &str = "停电通知：朝阳区今晚22点至次日6点线路检修，暂停上门，请提前告知客户。";
const RECIPIENTS: usize = 1000;

/// Who the load posts notices as, to whom, over how many connections.
struct Load<'a> {
    base: &'a str,
    token: &'a str,
    technicians: &'a [Value],
    connections: usize,
}

/// Posts notices until `texts` are queued: the requests' latencies in µs.
async fn post_notices(load: &Load<'_>, texts: usize) -> anyhow::Result<Vec<u64>> {
    let notices = texts.div_ceil(RECIPIENTS);
    let connections = load.connections;
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..connections {
        let (base, token) = (load.base.to_owned(), load.token.to_owned());
        let body = json!({"assignee_ids": load.technicians, "text": NOTICE});
        workers.spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()?;
            let mut latencies = Vec::new();
            for _ in (worker..notices).step_by(connections) {
                let sent = Instant::now();
                let response = client
                    .post(format!("{base}/api/v1/sms/notices"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await?;
                let status = response.status();
                let answer: Value = response.json().await?;
                anyhow::ensure!(status == 202, "notice refused: {status} {answer}");
                anyhow::ensure!(
                    answer["queued"].as_array().map(Vec::len) == Some(RECIPIENTS),
                    "{answer}"
                );
                latencies.push(sent.elapsed().as_micros() as u64);
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = workers.join_next().await {
        latencies.extend(done??);
    }
    latencies.sort_unstable();
    Ok(latencies)
}

/// Waits until the SMSC has taken `texts` more than `before`: when the first
/// and the last of them arrived.
async fn taken(smsc: &Smsc, before: usize, texts: usize) -> anyhow::Result<(Instant, Instant)> {
    let mut first = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let taken = smsc.taken() - before;
        if taken > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if taken >= texts {
            let last = Instant::now();
            return Ok((first.unwrap_or(last), last));
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {taken} of {texts} texts reached the SMSC"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn latency(latencies: &[u64]) -> String {
    let ms = |q: f64| quantile(latencies, q) as f64 / 1000.0;
    format!(
        "notices of {RECIPIENTS}: p50 {:.1} ms, p99 {:.1} ms ({} posted)",
        ms(0.5),
        ms(0.99),
        latencies.len()
    )
}

/// Texts sent while the notices arrive: texts/s from the SMSC's first to its last.
async fn live(smsc: &Smsc, load: &Load<'_>, texts: usize) -> anyhow::Result<f64> {
    let before = smsc.taken();
    let (latencies, sent) = tokio::join!(post_notices(load, texts), taken(smsc, before, texts));
    let (latencies, (first, last)) = (latencies?, sent?);
    let seconds = last.duration_since(first).as_secs_f64();
    let rate = texts as f64 / seconds;
    println!(
        "  while notices arrive: {texts} texts in {seconds:.2} s, {rate:.0} msg/s ({:.1} × Jasmin's best); {}",
        rate / JASMIN_BEST,
        latency(&latencies)
    );
    Ok(rate)
}

/// A backlog queued while the SMSC holds its answers (a window's worth
/// waiting at the SMSC, the rest in the database), then sent once it answers
/// again: texts/s from that moment to the last text taken.
async fn backlog(smsc: &Smsc, load: &Load<'_>, texts: usize) -> anyhow::Result<f64> {
    let before = smsc.taken();
    smsc.behave(|b| b.hold = true);
    let latencies = post_notices(load, texts).await?;
    let released = Instant::now();
    smsc.behave(|b| b.hold = false);
    let (_, last) = taken(smsc, before, texts).await?;
    let seconds = last.duration_since(released).as_secs_f64();
    let rate = texts as f64 / seconds;
    println!(
        "  a backlog once the SMSC answers again: {texts} texts in {seconds:.2} s, {rate:.0} msg/s ({:.1} × Jasmin's best); {}",
        rate / JASMIN_BEST,
        latency(&latencies)
    );
    Ok(rate)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let connections = env_number("HOTLINE_BENCH_CONNECTIONS", 4) as usize;
    let texts = env_number("HOTLINE_BENCH_TEXTS", 30_000) as usize;
    let window = env_number("HOTLINE_BENCH_SMPP_WINDOW", 1024);
    let infra = Infra::real()
        .await
        .context("PostgreSQL, RabbitMQ and Redis must be reachable (make infra starts them)")?;
    let reference = pgbench(&infra.database_url, &infra.run_id)?;

    // Counts what it takes; no receipts (as the sink Jasmin was measured against).
    let smsc = Smsc::start_on("127.0.0.1:0", "bench", "bench-pw", false).await;
    smsc.behave(|b| b.receipts = None);

    let client = reqwest::Client::new();
    let suite = TicketingSuite::start(
        &infra,
        &client,
        &[
            ("HOTLINE_TICKETING__SMS__PROVIDER", "smpp".into()),
            ("HOTLINE_TICKETING__SMS__SMPP__ADDRESS", smsc.url()),
            ("HOTLINE_TICKETING__SMS__SMPP__SYSTEM_ID", "bench".into()),
            ("HOTLINE_TICKETING__SMS__SMPP__PASSWORD", "bench-pw".into()),
            (
                "HOTLINE_TICKETING__SMS__SMPP__SOURCE_ADDR",
                "10690000".into(),
            ),
            ("HOTLINE_TICKETING__SMS__SMPP__WINDOW", window.to_string()),
            // Held answers (the backlog runs) must not time out meanwhile.
            (
                "HOTLINE_TICKETING__SMS__SMPP__RESPONSE_TIMEOUT",
                "120s".into(),
            ),
        ],
        "ticketing.sms.#",
    )
    .await?;
    let (ticketing, token) = (&suite.ticketing, &suite.token);
    let mut technicians = Vec::with_capacity(RECIPIENTS);
    for n in 0..RECIPIENTS {
        let created = create(
            &client,
            &format!("{}/api/v1/assignees", ticketing.http),
            token,
            json!({"kind": "technician", "name": format!("师傅 {n}"),
                   "phone": format!("1390{n:07}")}),
        )
        .await?;
        technicians.push(created["id"].clone());
    }
    anyhow::ensure!(
        smsc.wait(Duration::from_secs(30), |s| s.binds() > 0).await,
        "ticketing never bound to the SMSC"
    );

    println!(
        "sms: notices to {RECIPIENTS} technicians posted over {connections} connections, {texts} texts (one UCS-2 part each) per run, sent over one SMPP transceiver bind with a window of {window} to a stand-in SMSC in this process; PostgreSQL + Redis + RabbitMQ, one ticketing replica"
    );
    println!(
        "pgbench, 16 clients, single-row insert commits: {reference:.0}/s; Jasmin 0.11.1 on this machine kind: 823 msg/s HTTP→SMPP, {JASMIN_BEST:.0} msg/s SMPP→SMPP (target 5 ×: {:.0} msg/s)",
        JASMIN_BEST * 5.0
    );
    let load = Load {
        base: &ticketing.http,
        token,
        technicians: &technicians,
        connections,
    };
    // A short first run, not measured, warms the pools, the bind and the caches.
    let before = smsc.taken();
    post_notices(&load, 2_000).await?;
    taken(&smsc, before, 2_000).await?;
    let mut drained = Vec::new();
    for (name, delay) in [
        ("SMSC answering at once:", Duration::ZERO),
        ("SMSC answering after 50 ms:", Duration::from_millis(50)),
    ] {
        smsc.behave(|b| b.delay = delay);
        println!("{name}");
        live(&smsc, &load, texts).await?;
        drained.push(backlog(&smsc, &load, texts).await?);
    }
    let target = JASMIN_BEST * 5.0;
    println!(
        "target: ≥ {target:.0} msg/s over SMPP at once and after 50 ms: {}",
        if drained.iter().all(|rate| *rate >= target) {
            "met"
        } else {
            "missed"
        }
    );
    drop(suite);
    Ok(())
}
