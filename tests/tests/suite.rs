//! The whole suite as `hotline serve` assembles it, on the embedded backends and
//! on PostgreSQL + RabbitMQ + Redis: a caller recognised over REST and gRPC,
//! with health checks and reflection for the tools operators use; a work order
//! opened from the screen pop and resolved by a partner shop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hotline::Started;
use hotline_proto::identity::v1::{
    LookupByPhoneRequest, identity_service_client::IdentityServiceClient,
};
use hotline_system_tests::{ADMIN, in_process};
use hotline_testkit::Infra;
use tonic::{Request, metadata::MetadataValue};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

async fn start(infra: &Infra) -> Started {
    in_process::start(infra).await.expect("suite starts")
}

async fn a_caller_is_recognised_over_rest_and_grpc(infra: Infra) {
    let started = start(&infra).await;
    let http = format!("http://{}", started.running.http_addr);
    let grpc = format!("http://{}", started.running.grpc_addr);
    let client = reqwest::Client::new();
    let token = hotline_testkit::client_token(&client, &http, ADMIN.0, ADMIN.1).await;
    let phone = format!("139{:08}", rand::random::<u32>() % 100_000_000);
    let created = client
        .post(format!("{http}/api/v1/customers"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "系统测试", "phones": [{"number": phone}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();

    let mut identity = IdentityServiceClient::connect(grpc.clone()).await.unwrap();
    let mut request = Request::new(LookupByPhoneRequest {
        phone: format!("+86 {phone}"),
    });
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    let found = identity
        .lookup_by_phone(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.candidates.len(), 1);
    assert_eq!(
        found.candidates[0].customer.as_ref().unwrap().id,
        created["id"].as_str().unwrap()
    );

    let channel = tonic::transport::Channel::from_shared(grpc)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    let status = health
        .check(HealthCheckRequest {
            service: "hotline.identity.v1.IdentityService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status(), ServingStatus::Serving);

    let mut reflection = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in [
        "hotline.identity.v1.IdentityService",
        "hotline.routing.v1.RoutingService",
        "hotline.ticketing.v1.TicketingService",
    ] {
        assert!(names.contains(&service.to_owned()), "{names:?}");
    }
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );

    // The older protocol Postman and grpcio-reflection speak, and what it
    // resolves a service to.
    use tonic_reflection::pb::v1alpha as alpha;
    let mut reflection = alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let asks = [
        alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
            "hotline.routing.v1.RoutingService".into(),
        ),
    ]
    .map(|message_request| alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message_request),
    });
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter(asks))
        .await
        .unwrap()
        .into_inner();
    let listed = stream.message().await.unwrap().unwrap();
    let Some(alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        listed.message_response
    else {
        panic!("unexpected v1alpha answer: {listed:?}");
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "hotline.identity.v1.IdentityService"),
        "{:?}",
        list.service
    );
    let file = stream.message().await.unwrap().unwrap();
    let Some(alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
        file.message_response
    else {
        panic!("unexpected v1alpha answer: {file:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());

    started.running.shutdown();
    started.running.wait().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_a_caller_is_recognised_over_rest_and_grpc() {
    a_caller_is_recognised_over_rest_and_grpc(Infra::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_a_caller_is_recognised_over_rest_and_grpc() {
    let Some(infra) = Infra::real().await else {
        return;
    };
    a_caller_is_recognised_over_rest_and_grpc(infra).await;
}

/// The README's ticketing tour through the assembled suite: the customer found
/// by screen pop, a work order opened for them and dispatched to a shop, the
/// shop accepting and resolving it with its own partner token, the history and
/// the customer's timeline showing every step.
async fn a_work_order_is_opened_from_a_screen_pop_and_resolved_by_a_shop(infra: Infra) {
    let started = start(&infra).await;
    let http = format!("http://{}", started.running.http_addr);
    let client = reqwest::Client::new();
    let token = hotline_testkit::client_token(&client, &http, ADMIN.0, ADMIN.1).await;
    let send =
        |method: reqwest::Method, path: &str, token: &str, body: Option<serde_json::Value>| {
            let mut request = client
                .request(method, format!("{http}{path}"))
                .bearer_auth(token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            async move {
                let response = request.send().await.unwrap();
                let status = response.status();
                let body: serde_json::Value = response.json().await.unwrap();
                assert!(status.is_success(), "{status}: {body}");
                body
            }
        };
    use reqwest::Method;
    let phone = format!("139{:08}", rand::random::<u32>() % 100_000_000);
    send(
        Method::POST,
        "/api/v1/customers",
        &token,
        Some(serde_json::json!({
            "name": "工单测试", "phones": [{"number": phone}],
            "addresses": [{"city": "北京市", "district": "朝阳区", "street": "建国路 88 号"}],
        })),
    )
    .await;
    let found = send(
        Method::GET,
        &format!("/api/v1/customers/lookup?phone={phone}"),
        &token,
        None,
    )
    .await;
    let customer = found["candidates"][0]["customer"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let category = send(
        Method::POST,
        "/api/v1/categories",
        &token,
        Some(serde_json::json!({"code": "broadband", "name": "Broadband"})),
    )
    .await;
    let region = send(
        Method::POST,
        "/api/v1/regions",
        &token,
        Some(serde_json::json!({"code": "bj_cy", "name": "朝阳区"})),
    )
    .await;
    let shop = send(
        Method::POST,
        "/api/v1/assignees",
        &token,
        Some(serde_json::json!({
            "kind": "shop", "name": "Chaoyang repair", "partner_id": "shop-cy",
            "region_ids": [region["id"]],
        })),
    )
    .await;
    send(
        Method::POST,
        "/api/v1/dispatch-rules",
        &token,
        Some(serde_json::json!({
            "name": "Chaoyang", "region_id": region["id"], "strategy": "least_loaded",
        })),
    )
    .await;
    let order = send(
        Method::POST,
        "/api/v1/work-orders",
        &token,
        Some(serde_json::json!({
            "type": "fault_repair", "category_id": category["id"], "region_id": region["id"],
            "customer_id": customer, "description": "No connection since this morning",
        })),
    )
    .await;
    assert_eq!(order["customer"]["name"], "工单测试");
    // The rule dispatched it on its own.
    assert_eq!(
        (&order["status"], &order["assignee_id"]),
        (&serde_json::json!("dispatched"), &shop["id"])
    );
    let id = order["id"].as_str().unwrap().to_owned();

    let shop_client = send(
        Method::POST,
        "/api/v1/clients",
        &token,
        Some(serde_json::json!({
            "name": "Chaoyang repair", "roles": ["partner"], "partner_id": "shop-cy",
        })),
    )
    .await;
    let shop_token = hotline_testkit::client_token(
        &client,
        &http,
        shop_client["client_id"].as_str().unwrap(),
        shop_client["client_secret"].as_str().unwrap(),
    )
    .await;
    send(
        Method::POST,
        &format!("/api/v1/work-orders/{id}/accept"),
        &shop_token,
        None,
    )
    .await;
    send(
        Method::POST,
        &format!("/api/v1/work-orders/{id}/resolve"),
        &shop_token,
        Some(serde_json::json!({"resolution_code": "fixed"})),
    )
    .await;
    let closed = send(
        Method::POST,
        &format!("/api/v1/work-orders/{id}/close"),
        &token,
        None,
    )
    .await;
    assert_eq!(closed["status"], "closed");

    let history = send(
        Method::GET,
        &format!("/api/v1/work-orders/{id}/history"),
        &token,
        None,
    )
    .await;
    let actions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["created", "dispatch", "accept", "resolve", "close"]
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let timeline = send(
            Method::GET,
            &format!("/api/v1/customers/{customer}/timeline"),
            &token,
            None,
        )
        .await;
        let tickets = timeline["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "ticket")
            .count();
        if tickets == 5 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the timeline has {tickets} of 5 milestones"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    started.running.shutdown();
    started.running.wait().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_a_work_order_is_opened_from_a_screen_pop_and_resolved_by_a_shop() {
    a_work_order_is_opened_from_a_screen_pop_and_resolved_by_a_shop(Infra::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_a_work_order_is_opened_from_a_screen_pop_and_resolved_by_a_shop() {
    let Some(infra) = Infra::real().await else {
        return;
    };
    a_work_order_is_opened_from_a_screen_pop_and_resolved_by_a_shop(infra).await;
}
