//! Ticketing benchmark (`make bench-ticketing`): work orders opened by a load
//! generator in this process against `hotline serve` processes (identity and
//! one ticketing replica) on PostgreSQL + Redis + RabbitMQ, each dispatched
//! at once by a rule to the least-loaded of a technician (a text to the dev
//! sink) and a partner shop (a signed webhook to a receiver in this process).
//! An order counts once its answer says it was dispatched. It prints orders/s
//! and p50/p99 latency, then how long the texts and webhooks took to drain,
//! beside pgbench's single-row insert commits with 16 clients on the same
//! PostgreSQL in the same run.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use hotline_system_tests::{
    create, env_number, quantile,
    suite::{TicketingSuite, pgbench},
};
use hotline_testkit::Infra;
use serde_json::{Value, json};

/// What the load generator asks for: a category, a region, a technician and
/// a shop covering it, a least-loaded rule, a customer; the shop's endpoint.
async fn populate(
    client: &reqwest::Client,
    identity: &str,
    ticketing: &str,
    token: &str,
    receiver: &str,
) -> anyhow::Result<Value> {
    let api = |path: &str| format!("{ticketing}/api/v1/{path}");
    let category = create(
        client,
        &api("categories"),
        token,
        json!({"code": "broadband", "name": "Broadband"}),
    )
    .await?;
    let region = create(
        client,
        &api("regions"),
        token,
        json!({"code": "bj_cy", "name": "朝阳区"}),
    )
    .await?;
    let area = json!([region["id"]]);
    create(client, &api("assignees"), token, json!({"kind": "technician", "name": "王师傅", "phone": "13900139000", "capacity": 10_000, "region_ids": area})).await?;
    create(client, &api("assignees"), token, json!({"kind": "shop", "name": "Bench repair", "partner_id": "bench-shop", "capacity": 10_000, "region_ids": area})).await?;
    create(
        client,
        &api("dispatch-rules"),
        token,
        json!({"name": "Chaoyang", "region_id": region["id"], "strategy": "least_loaded"}),
    )
    .await?;
    let customer = create(
        client,
        &format!("{identity}/api/v1/customers"),
        token,
        json!({"name": "张伟", "phones": [{"number": "13800138000"}],
               "addresses": [{"city": "北京市", "district": "朝阳区", "street": "建国路 88 号"}]}),
    )
    .await?;
    let shop = create(
        client,
        &format!("{identity}/api/v1/clients"),
        token,
        json!({"name": "Bench repair", "roles": ["partner"], "partner_id": "bench-shop"}),
    )
    .await?;
    let shop_token = hotline_system_tests::token(
        client,
        identity,
        shop["client_id"].as_str().context("client id")?,
        shop["client_secret"].as_str().context("client secret")?,
    )
    .await?;
    create(
        client,
        &api("webhook-endpoints"),
        &shop_token,
        json!({"url": receiver}),
    )
    .await?;
    Ok(json!({"category": category["id"], "region": region["id"], "customer": customer["id"]}))
}

/// The `n` a counting query answers.
async fn count(db: &sea_orm::DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    use sea_orm::ConnectionTrait;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await?
        .context("no row")?;
    Ok(row.try_get::<i64>("", "n")?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let connections = env_number("HOTLINE_BENCH_CONNECTIONS", 16) as usize;
    let seconds = env_number("HOTLINE_BENCH_SECONDS", 15);
    let infra = Infra::real()
        .await
        .context("PostgreSQL, RabbitMQ and Redis must be reachable (make infra starts them)")?;
    let reference = pgbench(&infra.database_url, &infra.run_id)?;

    // The shop's system, answering every delivery at once.
    let webhooks = Arc::new(AtomicU64::new(0));
    let received = webhooks.clone();
    let receiver = HttpServer::new(move || {
        let received = received.clone();
        App::new().default_service(web::to(move || {
            received.fetch_add(1, Ordering::Relaxed);
            async { HttpResponse::NoContent().finish() }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))?;
    let receiver_url = format!("http://127.0.0.1:{}/hotline", receiver.addrs()[0].port());
    let receiver = receiver.run();
    let receiver_handle = receiver.handle();
    tokio::spawn(receiver);

    let client = reqwest::Client::new();
    let suite = TicketingSuite::start(
        &infra,
        &client,
        &[
            ("HOTLINE_TICKETING__WEBHOOKS__ALLOW_HTTP", "true".into()),
            (
                "HOTLINE_TICKETING__WEBHOOKS__ALLOW_NETWORKS",
                "[\"127.0.0.1/32\"]".into(),
            ),
        ],
        "ticketing.ticket.#",
    )
    .await?;
    let (identity, ticketing, token) = (&suite.identity, &suite.ticketing, &suite.token);
    let setup = Arc::new(
        populate(
            &client,
            &identity.http,
            &ticketing.http,
            token,
            &receiver_url,
        )
        .await?,
    );

    println!(
        "ticketing: {connections} connections opening work orders back to back (each dispatched by a rule: texts to the sink, webhooks to a local receiver), {seconds} s measured after 3 s of warm-up, PostgreSQL + Redis + RabbitMQ, one ticketing replica"
    );
    println!(
        "pgbench, 16 clients, single-row insert commits: {reference:.0}/s (a tenth: {:.0}/s)",
        reference / 10.0
    );
    let warm_up = Duration::from_secs(3);
    let start = Instant::now();
    let (measure_from, measure_to) = (
        start + warm_up,
        start + warm_up + Duration::from_secs(seconds),
    );
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (base, token, setup) = (ticketing.http.clone(), token.clone(), setup.clone());
        workers.spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()?;
            let (mut latencies, mut undispatched) = (Vec::new(), 0u64);
            loop {
                let sent = Instant::now();
                if sent >= measure_to {
                    return anyhow::Ok((latencies, undispatched));
                }
                let response = client
                    .post(format!("{base}/api/v1/work-orders"))
                    .bearer_auth(&token)
                    .json(&json!({
                        "type": "fault_repair",
                        "category_id": setup["category"],
                        "region_id": setup["region"],
                        "customer_id": setup["customer"],
                        "description": "No connection since this morning",
                    }))
                    .send()
                    .await?;
                let status = response.status();
                let order: Value = response.json().await?;
                anyhow::ensure!(status == 201, "order refused: {status} {order}");
                if sent < measure_from {
                    continue;
                }
                if order["status"] == "dispatched" {
                    latencies.push(sent.elapsed().as_micros() as u64);
                } else {
                    undispatched += 1;
                }
            }
        });
    }
    let (mut latencies, mut undispatched) = (Vec::new(), 0);
    while let Some(done) = workers.join_next().await {
        let (mine, missed) = done??;
        latencies.extend(mine);
        undispatched += missed;
    }
    let load_ended = Instant::now();
    latencies.sort_unstable();
    let per_second = latencies.len() as f64 / seconds as f64;
    let ms = |q: f64| quantile(&latencies, q) as f64 / 1000.0;
    println!();
    println!(
        "orders opened and dispatched: {per_second:.0}/s, p50 {:.2} ms, p99 {:.2} ms ({} measured, {undispatched} not dispatched at once), {:.3} × pgbench",
        ms(0.5),
        ms(0.99),
        latencies.len(),
        per_second / reference
    );

    // The texts and webhooks those orders caused, drained.
    let db = sea_orm::Database::connect(&infra.database_url).await?;
    let schema = format!("{}_ticketing", infra.run_id);
    let deadline = Instant::now() + Duration::from_secs(300);
    let waiting = format!(
        "SELECT (SELECT count(*) FROM \"{schema}\".sms_message WHERE status = 'queued') \
         + (SELECT count(*) FROM \"{schema}\".webhook_delivery WHERE status = 'pending') AS n"
    );
    while count(&db, &waiting).await? > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained = load_ended.elapsed().as_secs_f64();
    let texts = count(
        &db,
        &format!("SELECT count(*) AS n FROM \"{schema}\".sms_message WHERE status = 'delivered'"),
    )
    .await?;
    let deliveries = count(
        &db,
        &format!(
            "SELECT count(*) AS n FROM \"{schema}\".webhook_delivery WHERE status = 'delivered'"
        ),
    )
    .await?;
    let total = start.elapsed().as_secs_f64();
    println!(
        "texts delivered to the sink: {texts}; webhooks delivered: {deliveries} ({} requests received); backlog drained {drained:.1} s after the load ended ({:.0} texts/s and {:.0} webhooks/s over the whole run)",
        webhooks.load(Ordering::Relaxed),
        texts as f64 / total,
        deliveries as f64 / total
    );
    println!(
        "target: ≥ {:.0} orders/s (0.1 × pgbench): {}",
        reference / 10.0,
        if per_second >= reference / 10.0 {
            "met"
        } else {
            "missed"
        }
    );
    receiver_handle.stop(false).await;
    Ok(())
}
