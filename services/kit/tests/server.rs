//! The process around the services: probes, shutdown and metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use actix_web::{get, web};
use async_trait::async_trait;
use hotline_kit::{
    auth::{Authenticator, Role},
    component::{Component, Tasks},
    config::ServerConfig,
    server::{Process, Running},
};
use hotline_testkit::{Infra, TestKeys, WhoAmI, auth_config};
use tokio_util::sync::CancellationToken;

struct Started {
    running: Running,
    http: String,
    grpc: String,
    keys: TestKeys,
    _infra: Infra,
}

fn server_config(shutdown_delay: Duration, drain_timeout: Duration) -> ServerConfig {
    ServerConfig {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        shutdown_delay,
        drain_timeout,
        max_body_bytes: 64 * 1024,
        http_workers: 1,
    }
}

async fn start(components: Vec<Arc<dyn Component>>, config: ServerConfig) -> Started {
    hotline_kit::telemetry::init_for_tests();
    let keys = TestKeys::generate("k1");
    let infra = Infra::embedded();
    let process = Process {
        components,
        authenticator: Arc::new(Authenticator::new(keys.key_source(), &auth_config())),
        file_descriptor_set: &[],
        platform: infra.platform().await,
        service: "hotline-kit-test".into(),
        version: "test",
        revision: "",
    };
    let running = process
        .start(&config, CancellationToken::new())
        .await
        .unwrap();
    Started {
        http: format!("http://{}", running.http_addr),
        grpc: format!("http://{}", running.grpc_addr),
        running,
        keys,
        _infra: infra,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_need_no_token_and_shutdown_turns_readiness_off() {
    let app = start(
        vec![Arc::new(WhoAmI)],
        server_config(Duration::from_secs(2), Duration::from_secs(5)),
    )
    .await;
    let client = reqwest::Client::new();
    for path in ["/livez", "/readyz", "/metrics", "/openapi.json"] {
        let status = client
            .get(format!("{}{path}", app.http))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{path}");
    }
    app.running.shutdown();
    // During the shutdown delay the server still answers, and says it is not ready.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let readyz = client
        .get(format!("{}/readyz", app.http))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status(), 503);
    let livez = client.get(format!("{}/livez", app.http)).send().await;
    assert_eq!(livez.unwrap().status(), 200, "alive while draining");
    app.running.wait().await.expect("a clean stop");
}

/// A request that outlasts any drain, and a worker that ignores shutdown.
struct Stubborn;

#[utoipa::path(responses((status = 200)))]
#[get("/api/v1/slow")]
async fn slow() -> web::Json<()> {
    tokio::time::sleep(Duration::from_secs(60)).await;
    web::Json(())
}

#[async_trait]
impl Component for Stubborn {
    fn name(&self) -> &'static str {
        "stubborn"
    }

    fn configure_rest(&self, config: &mut utoipa_actix_web::service_config::ServiceConfig) {
        config.service(slow);
    }

    fn add_grpc(&self, _routes: &mut tonic::service::RoutesBuilder) -> Vec<&'static str> {
        Vec::new()
    }

    fn spawn_background(&self, tasks: &mut Tasks, _shutdown: CancellationToken) {
        tasks.spawn(async {
            std::future::pending::<()>().await;
            Ok(())
        });
    }

    async fn check_ready(&self) -> Result<(), String> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_timeout_bounds_the_whole_shutdown() {
    let drain = Duration::from_secs(2);
    let app = start(
        vec![Arc::new(Stubborn)],
        server_config(Duration::ZERO, drain),
    )
    .await;
    let url = format!("{}/api/v1/slow", app.http);
    let token = app.keys.token(&[Role::Agent]);
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    app.running.shutdown();
    app.running.wait().await.expect("a stop");
    let took = started.elapsed();
    assert!(
        took >= drain && took < drain + Duration::from_secs(1),
        "shutdown took {took:?} with a drain timeout of {drain:?}"
    );
    assert!(in_flight.await.unwrap().is_err(), "cut at the deadline");
}

async fn metrics(client: &reqwest::Client, http: &str) -> String {
    client
        .get(format!("{http}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_clients_send_never_becomes_a_label_value() {
    let app = start(
        vec![Arc::new(WhoAmI)],
        server_config(Duration::ZERO, Duration::from_secs(5)),
    )
    .await;
    let client = reqwest::Client::new();
    let grpc = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let token = app.keys.token(&[Role::Agent]);
    let mut sent = Vec::new();
    for _ in 0..5 {
        let random = uuid::Uuid::new_v4().simple().to_string();
        let path = format!("/zz{random}");
        client
            .get(format!("{}{path}", app.http))
            .send()
            .await
            .unwrap();
        let method = reqwest::Method::from_bytes(format!("M{random}").as_bytes()).unwrap();
        client
            .request(method, format!("{}/api/v1/whoami", app.http))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        for authorization in [None, Some(&token)] {
            let mut request = grpc
                .post(format!("{}/x{random}.Y/Z{random}", app.grpc))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(vec![0_u8; 5]);
            if let Some(token) = authorization {
                request = request.bearer_auth(token);
            }
            let answer = request.send().await.unwrap();
            assert!(answer.headers().contains_key("grpc-status"));
        }
        sent.push(random);
    }

    let text = metrics(&client, &app.http).await;
    for random in &sent {
        assert!(
            !text.contains(random.as_str()),
            "{random} became a label:\n{text}"
        );
    }
    for folded in [
        r#"http_requests_total{method="GET",route="unmatched",status="404"}"#,
        r#"http_requests_total{method="_OTHER","#,
        r#"grpc_requests_total{service="unknown",method="unknown",code="16"}"#,
        r#"grpc_requests_total{service="unknown",method="unknown",code="12"}"#,
    ] {
        assert!(text.contains(folded), "no {folded}:\n{text}");
    }
}
