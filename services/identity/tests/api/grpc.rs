use hotline_identity::{pii::PiiCipher, store::signing_key};
use hotline_kit::auth::{Claims, Principal, Role};
use hotline_proto::{
    clients::{IdentityApi, IdentityGrpcClient},
    identity::v1::{
        BillingStatus, CreateCustomerRequest, GetCustomerRequest, LookupByPhoneRequest, MatchedOn,
        Phone, PhoneLabel, SearchCustomersRequest, identity_service_client::IdentityServiceClient,
    },
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sea_orm::{EntityTrait, QueryOrder};
use tonic::{Code, Request, metadata::MetadataValue, transport::Channel};

use crate::helpers::{Identity, zhang_wei};

crate::on_both_backends!(
    screen_pop_and_customers_over_grpc,
    grpc_refuses_bad_input_and_missing_tokens,
    the_grpc_client_and_the_in_process_service_answer_alike,
);

async fn client(app: &Identity) -> IdentityServiceClient<Channel> {
    IdentityServiceClient::connect(app.app.grpc_url.clone())
        .await
        .unwrap()
}

/// Claims signed with identity's newest signing key, read from its table.
async fn signed_by_identity(app: &Identity, claims: &Claims) -> String {
    let key = signing_key::Entity::find()
        .order_by_desc(signing_key::Column::Generation)
        .one(&app.database().await)
        .await
        .unwrap()
        .unwrap();
    let cipher = PiiCipher::from_base64(app.config.pii_key.expose()).unwrap();
    let pkcs8 = cipher
        .decrypt(&key.private_key, key.kid.as_bytes())
        .unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&pkcs8)).unwrap()
}

fn authed<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    request
}

async fn screen_pop_and_customers_over_grpc(app: Identity) {
    let mut grpc = client(&app).await;
    let agent = app.token_for(&["agent"], None).await;
    let create = || CreateCustomerRequest {
        name: "赵敏".into(),
        phones: vec![Phone {
            number: "+86 139-1111-2222".into(),
            label: PhoneLabel::Unspecified.into(),
        }],
        id_number: "11010519491231002X".into(),
        attributes_json: r#"{"segment":"gold"}"#.into(),
        idempotency_key: "grpc-create-1".into(),
        ..Default::default()
    };
    let created = grpc
        .create_customer(authed(create(), &agent))
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    let again = grpc
        .create_customer(authed(create(), &agent))
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(created.id, again.id, "idempotent over gRPC too");
    assert_eq!(created.phones[0].number, "+8613911112222");
    assert_eq!(created.phones[0].label(), PhoneLabel::Mobile, "the default");
    assert_eq!(created.id_number, "1101**********002X");

    let found = grpc
        .lookup_by_phone(authed(
            LookupByPhoneRequest {
                phone: "8613911112222".into(),
            },
            &agent,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.phone, "+8613911112222");
    assert_eq!(found.candidates.len(), 1);
    assert_eq!(
        found.candidates[0].customer.as_ref().unwrap().id,
        created.id
    );
    assert_eq!(found.candidates[0].matched_on(), MatchedOn::PrimaryPhone);
    assert_eq!(
        found.candidates[0].billing.as_ref().unwrap().status(),
        BillingStatus::NotConfigured
    );

    let fetched = grpc
        .get_customer(authed(
            GetCustomerRequest {
                id: created.id.clone(),
            },
            &agent,
        ))
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(fetched.attributes_json, r#"{"segment":"gold"}"#);

    let page = grpc
        .search_customers(authed(
            SearchCustomersRequest {
                name: "赵".into(),
                ..Default::default()
            },
            &agent,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.customers.len(), 1);
    assert!(page.next_cursor.is_empty());

    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"grpc_requests_total{service="hotline.identity.v1.IdentityService",method="LookupByPhone",code="0"}"#),
        "{metrics}"
    );
}

async fn grpc_refuses_bad_input_and_missing_tokens(app: Identity) {
    let mut grpc = client(&app).await;
    let status = grpc
        .lookup_by_phone(Request::new(LookupByPhoneRequest {
            phone: "13800138000".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    // Signed by identity's own published key: refused only because it expired.
    let mut claims = hotline_testkit::TestKeys::claims("x", &[Role::Admin]);
    let lookup = || LookupByPhoneRequest {
        phone: "13800138000".into(),
    };
    let fresh = signed_by_identity(&app, &claims).await;
    grpc.lookup_by_phone(authed(lookup(), &fresh))
        .await
        .unwrap();
    claims.exp = chrono::Utc::now().timestamp() - 3600;
    let expired = signed_by_identity(&app, &claims).await;
    let status = grpc
        .lookup_by_phone(authed(lookup(), &expired))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "token expired");
    let status = grpc
        .lookup_by_phone(authed(
            LookupByPhoneRequest { phone: "12".into() },
            &app.admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = grpc
        .get_customer(authed(
            GetCustomerRequest {
                id: "0190a0a0-0000-7000-8000-000000000000".into(),
            },
            &app.admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status.metadata().get("hotline-error-kind").unwrap(),
        "customer_not_found"
    );
    let invalid = CreateCustomerRequest {
        name: "坏".into(),
        id_number: "110105194912310021".into(),
        ..Default::default()
    };
    let status = grpc
        .create_customer(authed(invalid, &app.admin))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("/id_number"),
        "{}",
        status.message()
    );
    // A label from a newer contract this server doesn't know is refused, not guessed.
    let unknown_label = CreateCustomerRequest {
        name: "钱".into(),
        phones: vec![Phone {
            number: "13911113333".into(),
            label: 99,
        }],
        ..Default::default()
    };
    let status = grpc
        .create_customer(authed(unknown_label, &app.admin))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("/phones/0/label"),
        "{}",
        status.message()
    );
    let partner = app.token_for(&["partner"], Some("shop-1")).await;
    let status = grpc
        .lookup_by_phone(authed(
            LookupByPhoneRequest {
                phone: "13800138000".into(),
            },
            &partner,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

/// Another service sees one contract whether identity runs beside it or elsewhere.
async fn the_grpc_client_and_the_in_process_service_answer_alike(app: Identity) {
    let created = app.create(zhang_wei()).await;
    let agent_token = app.token_for(&["agent"], None).await;
    let caller = Principal {
        subject: "routing".into(),
        roles: [Role::Agent].into_iter().collect(),
        partner_id: None,
        token: agent_token,
    };
    let remote = IdentityGrpcClient::connect_lazy(&app.app.grpc_url).unwrap();
    let local: &dyn IdentityApi = app.service.as_ref();
    let over_grpc = remote
        .lookup_by_phone(&caller, "13800138000")
        .await
        .unwrap();
    let in_process = local.lookup_by_phone(&caller, "13800138000").await.unwrap();
    assert_eq!(over_grpc, in_process);
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        remote.get_customer(&caller, id).await.unwrap(),
        local.get_customer(&caller, id).await.unwrap()
    );
    let missing = remote
        .get_customer(&caller, "0190a0a0-0000-7000-8000-000000000000")
        .await
        .unwrap_err();
    assert_eq!(missing.kind, "customer_not_found");
}
