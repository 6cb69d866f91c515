//! Ticketing across replicas: two `hotline serve --target ticketing`
//! processes (beside one identity) on PostgreSQL + Redis + RabbitMQ. Orders
//! are opened and dispatched through both, in turn to a technician (a text
//! each, over SMPP to a stand-in SMSC that answers after 100 ms) and to a
//! partner shop (a webhook each, to a receiver that takes its time), and the
//! replica holding the leases is killed with SIGKILL mid-run. Then, from the
//! SMSC, the receiver and the database: every text and every webhook
//! delivered, each under an id the database knows (a resend after the kill
//! repeats an id, never invents one), the survivor bound to the SMSC and
//! holding the leases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use common::{Clients, Replica, wait_ready};
use hotline_testkit::{Infra, Smsc};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};

const ADMIN: (&str, &str) = ("tk-replicas-admin", "tk-replicas-admin-secret-0123456789");
const ORDERS: usize = 240;
/// Orders opened at once.
const PARALLEL: usize = 8;

/// The shop's system: counts each `webhook-id` it is sent, answering after 20 ms.
type Seen = Arc<Mutex<HashMap<String, usize>>>;

async fn receive(seen: web::Data<Seen>, request: HttpRequest) -> HttpResponse {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let id = request
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    *seen.lock().unwrap().entry(id).or_default() += 1;
    HttpResponse::NoContent().finish()
}

async fn count(db: &DatabaseConnection, sql: String) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// Opens an order and dispatches it to `assignee`, safe to retry across a kill.
async fn open_and_dispatch(clients: &Clients, setup: &Value, index: usize, assignee: &str) {
    let (status, order) = clients
        .send_keyed(
            reqwest::Method::POST,
            "/api/v1/work-orders",
            Some(&json!({
                "type": "fault_repair",
                "category_id": setup["category"],
                "region_id": setup["region"],
                "contact_name": format!("客户 {index}"),
                "contact_phone": format!("1380013{index:04}"),
                "description": "No signal",
            })),
            Some(&format!("order-{index}")),
        )
        .await;
    assert!(status == 201 || status == 200, "{status} {order}");
    let id = order["id"].as_str().unwrap();
    let (status, body) = clients
        .post(
            &format!("/api/v1/work-orders/{id}/dispatch"),
            &json!({"assignee_id": assignee}),
        )
        .await;
    if status != 200 {
        // A dispatch whose answer the kill lost, retried: already done.
        let (_, now) = clients
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/work-orders/{id}"),
                None,
            )
            .await;
        assert_eq!(
            (status, now["assignee_id"].as_str()),
            (409, Some(assignee)),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_lose_no_text_or_webhook_when_one_is_killed() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let Some(infra) = Infra::real().await else {
        return;
    };
    let data_dir = infra.data_dir();
    let probe = reqwest::Client::new();

    let seen: Seen = Arc::default();
    let state = web::Data::new(seen.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .default_service(web::to(receive))
    })
    .workers(2)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let receiver = format!("http://127.0.0.1:{}/hotline", server.addrs()[0].port());
    let server = server.run();
    let server_handle = server.handle();
    tokio::spawn(server);

    // The operator's SMSC: receipts for every part, each answer 100 ms late so
    // the kill finds submits outstanding.
    let smsc = Smsc::start("hotline", "smpp-pw").await;
    smsc.behave(|b| b.delay = Duration::from_millis(100));
    let smsc_url = smsc.url();

    let admin = [
        ("HOTLINE_BOOTSTRAP_CLIENT_ID", ADMIN.0),
        ("HOTLINE_BOOTSTRAP_CLIENT_SECRET", ADMIN.1),
    ];
    let mut identity = Replica::new(&infra, "identity", &admin);
    identity.start(&data_dir);
    wait_ready(&probe, &mut identity, &data_dir).await;
    let mut replicas: Vec<Replica> = ["ticketing-a", "ticketing-b"]
        .into_iter()
        .map(|host| {
            Replica::new(
                &infra,
                "ticketing",
                &[
                    ("HOSTNAME", host),
                    ("HOTLINE_PEERS__IDENTITY_GRPC", identity.grpc.as_str()),
                    ("HOTLINE_PEERS__IDENTITY_HTTP", identity.http.as_str()),
                    ("HOTLINE_TICKETING__LEASE_TTL", "2s"),
                    ("HOTLINE_TICKETING__LEASE_RENEW", "500ms"),
                    ("HOTLINE_TICKETING__SMS__POLL", "50ms"),
                    ("HOTLINE_TICKETING__SMS__PROVIDER", "smpp"),
                    ("HOTLINE_TICKETING__SMS__SMPP__ADDRESS", smsc_url.as_str()),
                    ("HOTLINE_TICKETING__SMS__SMPP__SYSTEM_ID", "hotline"),
                    ("HOTLINE_TICKETING__SMS__SMPP__PASSWORD", "smpp-pw"),
                    ("HOTLINE_TICKETING__SMS__SMPP__SOURCE_ADDR", "10690000"),
                    ("HOTLINE_TICKETING__SMS__SMPP__RECONNECT_MAX", "2s"),
                    ("HOTLINE_TICKETING__WEBHOOKS__POLL", "50ms"),
                    ("HOTLINE_TICKETING__WEBHOOKS__ALLOW_HTTP", "true"),
                    (
                        "HOTLINE_TICKETING__WEBHOOKS__ALLOW_NETWORKS",
                        "[\"127.0.0.1/32\"]",
                    ),
                ],
            )
        })
        .collect();
    // The first started takes the leases; the second waits for them.
    for replica in &mut replicas {
        replica.start(&data_dir);
        wait_ready(&probe, replica, &data_dir).await;
    }
    let token = hotline_testkit::client_token(&probe, &identity.http, ADMIN.0, ADMIN.1).await;
    let staff = Arc::new(Clients::new(
        replicas.iter().map(|r| r.http.clone()).collect(),
        token.clone(),
    ));

    let (status, category) = staff
        .post("/api/v1/categories", &json!({"code": "tv", "name": "TV"}))
        .await;
    assert_eq!(status, 201, "{category}");
    let (_, region) = staff
        .post("/api/v1/regions", &json!({"code": "bj", "name": "北京"}))
        .await;
    let (status, technician) = staff
        .post(
            "/api/v1/assignees",
            &json!({"kind": "technician", "name": "王师傅", "phone": "13900139000", "capacity": 10000}),
        )
        .await;
    assert_eq!(status, 201, "{technician}");
    let (_, shop) = staff
        .post(
            "/api/v1/assignees",
            &json!({"kind": "shop", "name": "Replica repair", "partner_id": "shop-r", "capacity": 10000}),
        )
        .await;
    // The shop's client registers its system's endpoint with its own token.
    let created = probe
        .post(format!("{}/api/v1/clients", identity.http))
        .bearer_auth(&token)
        .json(&json!({"name": "Replica repair", "roles": ["partner"], "partner_id": "shop-r"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let shop_token = hotline_testkit::client_token(
        &probe,
        &identity.http,
        created["client_id"].as_str().unwrap(),
        created["client_secret"].as_str().unwrap(),
    )
    .await;
    let shop_clients = Clients::new(staff.replicas.clone(), shop_token);
    let (status, endpoint) = shop_clients
        .post(
            "/api/v1/webhook-endpoints",
            &json!({"url": receiver, "event_types": ["ticketing.ticket.dispatched"]}),
        )
        .await;
    assert_eq!(status, 201, "{endpoint}");

    let setup = Arc::new(json!({"category": category["id"], "region": region["id"]}));
    let assignees = [
        technician["id"].as_str().unwrap().to_owned(),
        shop["id"].as_str().unwrap().to_owned(),
    ];
    let opened = Arc::new(AtomicUsize::new(0));
    let room = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut load = tokio::task::JoinSet::new();
    for index in 0..ORDERS {
        let permit = room.clone().acquire_owned().await.unwrap();
        let (clients, setup, opened) = (staff.clone(), setup.clone(), opened.clone());
        let assignee = assignees[index % 2].clone();
        load.spawn(async move {
            open_and_dispatch(&clients, &setup, index, &assignee).await;
            opened.fetch_add(1, Ordering::SeqCst);
            drop(permit);
        });
        if index == ORDERS / 2 {
            break;
        }
    }

    // Half-way, the leases' holder dies mid-delivery.
    let db = Database::connect(&infra.database_url).await.unwrap();
    let schema = format!("{}_ticketing", infra.run_id);
    let holder = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT holder FROM \"{schema}\".lease WHERE name = 'ticketing.webhooks'"),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<String>("", "holder")
        .unwrap();
    let victim = usize::from(holder.starts_with("ticketing-b"));
    replicas[victim].kill();

    for index in (ORDERS / 2 + 1)..ORDERS {
        let permit = room.clone().acquire_owned().await.unwrap();
        let (clients, setup, opened) = (staff.clone(), setup.clone(), opened.clone());
        let assignee = assignees[index % 2].clone();
        load.spawn(async move {
            open_and_dispatch(&clients, &setup, index, &assignee).await;
            opened.fetch_add(1, Ordering::SeqCst);
            drop(permit);
        });
    }
    while let Some(done) = load.join_next().await {
        done.unwrap();
    }
    assert_eq!(opened.load(Ordering::SeqCst), ORDERS);

    // Everything reaches its receiver once the survivor holds the leases.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let waiting = count(
            &db,
            format!(
                "SELECT (SELECT count(*) FROM \"{schema}\".webhook_delivery WHERE status <> 'delivered') \
                 + (SELECT count(*) FROM \"{schema}\".sms_message WHERE status <> 'delivered') AS n"
            ),
        )
        .await;
        if waiting == 0 {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let rows = db
                .query_all_raw(Statement::from_string(
                    db.get_database_backend(),
                    format!(
                        "SELECT status, COALESCE(error, '') AS error, CAST(count(*) AS BIGINT) AS n \
                         FROM \"{schema}\".sms_message WHERE status <> 'delivered' GROUP BY 1, 2"
                    ),
                ))
                .await
                .unwrap();
            let texts: Vec<(String, String, i64)> = rows
                .iter()
                .map(|r| {
                    (
                        r.try_get("", "status").unwrap(),
                        r.try_get("", "error").unwrap(),
                        r.try_get("", "n").unwrap(),
                    )
                })
                .collect();
            panic!("{waiting} texts and webhooks never delivered; texts: {texts:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let shop_orders = i64::try_from(ORDERS / 2).unwrap();
    let deliveries = count(
        &db,
        format!("SELECT count(*) AS n FROM \"{schema}\".webhook_delivery"),
    )
    .await;
    assert_eq!(deliveries, shop_orders, "one delivery per shop order");
    let texts = count(
        &db,
        format!("SELECT count(*) AS n FROM \"{schema}\".sms_message WHERE purpose = 'new_order'"),
    )
    .await;
    assert_eq!(texts, shop_orders, "one text per technician order");

    let ids: Vec<String> = {
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT CAST(id AS text) AS id FROM \"{schema}\".webhook_delivery"),
            ))
            .await
            .unwrap();
        rows.iter()
            .map(|row| row.try_get::<String>("", "id").unwrap())
            .collect()
    };
    let seen = seen.lock().unwrap().clone();
    for id in &ids {
        assert!(
            seen.contains_key(id),
            "delivery {id} never reached the shop"
        );
    }
    assert_eq!(
        seen.len(),
        ids.len(),
        "no webhook-id the database doesn't know: {seen:?}"
    );
    let resent: usize = seen.values().map(|n| n - 1).sum();
    assert!(
        resent <= 1,
        "only a request cut by the kill is sent again ({resent})"
    );

    // Every text reached the SMSC under its own id; only those in flight at
    // the kill twice. The survivor bound again.
    let text_ids: Vec<String> = {
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT CAST(id AS text) AS id, parts FROM \"{schema}\".sms_message"),
            ))
            .await
            .unwrap();
        rows.iter()
            .map(|row| row.try_get::<String>("", "id").unwrap())
            .collect()
    };
    let mut parts_seen: HashMap<String, usize> = HashMap::new();
    for part in smsc.parts() {
        *parts_seen
            .entry(part.stable_id.clone().unwrap_or_default())
            .or_default() += 1;
    }
    for id in &text_ids {
        assert!(
            parts_seen.contains_key(id),
            "text {id} never reached the SMSC"
        );
    }
    assert_eq!(
        parts_seen.len(),
        text_ids.len(),
        "no text id the database doesn't know"
    );
    let parts_expected = count(
        &db,
        format!(
            "SELECT CAST(COALESCE(SUM(parts), 0) AS BIGINT) AS n FROM \"{schema}\".sms_message"
        ),
    )
    .await;
    let parts_resent = smsc.parts().len() - usize::try_from(parts_expected).unwrap();
    assert!(
        parts_resent <= 64 * 6,
        "at most a window of texts sent again ({parts_resent} parts)"
    );
    assert!(smsc.binds() >= 2, "the survivor bound to the SMSC");

    let epochs = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT name, holder, epoch FROM \"{schema}\".lease \
                 WHERE name IN ('ticketing.webhooks', 'ticketing.sms')"
            ),
        ))
        .await
        .unwrap();
    let survivor = ["ticketing-a", "ticketing-b"][1 - victim];
    for row in epochs {
        let (name, holder, epoch): (String, String, i64) = (
            row.try_get("", "name").unwrap(),
            row.try_get("", "holder").unwrap(),
            row.try_get("", "epoch").unwrap(),
        );
        assert!(epoch >= 2, "{name} taken over (epoch {epoch})");
        assert!(holder.starts_with(survivor), "{name} held by {holder}");
    }
    eprintln!(
        "{ORDERS} orders through 2 replicas, {} retried requests; {} webhooks ({resent} resent), {texts} texts ({} parts at the SMSC, {parts_resent} resent, {} binds)",
        staff.retries.load(Ordering::Relaxed),
        ids.len(),
        smsc.parts().len(),
        smsc.binds()
    );
    server_handle.stop(false).await;
}
