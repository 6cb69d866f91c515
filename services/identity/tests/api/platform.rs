use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Identity, zhang_wei};

crate::on_both_backends!(
    probes_metrics_and_api_docs_are_served,
    screen_pops_are_cached_and_dropped_on_change
);

async fn probes_metrics_and_api_docs_are_served(app: Identity) {
    let client = &app.app.client;
    assert_eq!(
        client
            .get(app.app.url("/livez"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let ready = app.public_json("/readyz").await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["identity"], "ready");

    app.create(zhang_wei()).await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            r#"http_requests_total{method="POST",route="/api/v1/customers",status="201"}"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("http_request_duration_seconds_bucket"));

    let api: Value = client
        .get(app.app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/v1/customers",
        "/api/v1/customers/lookup",
        "/api/v1/customers/{id}",
        "/oauth/token",
        "/api/v1/clients",
    ] {
        assert!(api["paths"].get(path).is_some(), "openapi lacks {path}");
    }
    assert!(api["components"]["schemas"].get("NewCustomer").is_some());
    let docs = client.get(app.app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(
        docs.text().await.unwrap().contains("swagger"),
        "docs are served from the binary"
    );
}

/// The screen pop is cache-aside: the first lookup fills the cache, a change
/// drops it. A write behind the service's back (which drops nothing) shows
/// that lookups are answered from the cache, on every backend.
async fn screen_pops_are_cached_and_dropped_on_change(app: Identity) {
    use hotline_identity::store::customer;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};

    let created = app.create(zhang_wei()).await;
    let id = uuid::Uuid::parse_str(created["id"].as_str().unwrap()).unwrap();
    // The creation's own event drops cached lookups of its numbers: let it pass
    // first, or it would drop the entry this test is about to fill.
    assert!(
        hotline_testkit::eventually(std::time::Duration::from_secs(10), || async {
            app.metrics().await.lines().any(|line| {
                line.starts_with("events_handled_total")
                    && line.contains("consumer=\"identity.lookup-invalidation\"")
                    && line.contains("type=\"identity.customer.created\"")
            })
        })
        .await,
        "the creation event reached the invalidation consumer"
    );
    app.lookup("13800138000", &app.admin).await;
    customer::Entity::update_many()
        .col_expr(customer::Column::Name, Expr::value("改在缓存背后"))
        .filter(customer::Column::Id.eq(id))
        .exec(app.service.db())
        .await
        .unwrap();
    let popped = app.lookup("+86 138 0013 8000", &app.admin).await;
    assert_eq!(
        popped["candidates"][0]["customer"]["name"], "张伟",
        "answered from the cache"
    );
    let key = app.lookup_cache_key("+8613800138000");
    let mut redis = match &app.redis_url {
        Some(url) => Some(
            redis::Client::open(url.as_str())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
        ),
        None => None,
    };
    if let Some(redis) = redis.as_mut() {
        let cached: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(redis)
            .await
            .unwrap();
        let cached: Value = serde_json::from_str(&cached.expect("the lookup is in Redis")).unwrap();
        assert_eq!(cached["candidates"][0]["customer"]["id"], created["id"]);
        let ttl: i64 = redis::cmd("TTL")
            .arg(&key)
            .query_async(redis)
            .await
            .unwrap();
        assert!(ttl > 0 && ttl <= 600, "cached with a ttl: {ttl}");
    }

    let changed = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/customers/{id}"),
            &app.admin,
        )
        .json(&serde_json::json!({"vip_level": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    if let Some(redis) = redis.as_mut() {
        let after: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(redis)
            .await
            .unwrap();
        assert!(after.is_none(), "a change drops the cached screen pop");
    }
    // The entry was dropped: the next lookup reads the database, the write
    // made behind the cache included.
    let popped = app.lookup("13800138000", &app.admin).await;
    let customer = &popped["candidates"][0]["customer"];
    assert_eq!(customer["name"], "改在缓存背后");
    assert_eq!(customer["vip_level"], 4);
}

/// A service in another process verifies identity's tokens against the JWKS it
/// fetches over HTTP, and picks up a rotated key without a restart.
mod another_process {
    use std::sync::Arc;

    use hotline_kit::auth::HttpKeySource;
    use hotline_testkit::{Infra, TestApp, WhoAmI};
    use reqwest::StatusCode;

    use crate::helpers::{ADMIN_ID, ADMIN_SECRET, Identity, header_kid};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tokens_are_verified_against_the_fetched_jwks() {
        let identity = Identity::spawn(Infra::embedded()).await;
        let infra = Infra::embedded();
        let platform = infra.platform().await;
        let keys = Arc::new(HttpKeySource::new(
            identity.app.url("/.well-known/jwks.json"),
        ));
        let other = TestApp::start(infra, platform, vec![Arc::new(WhoAmI)], keys).await;
        let ask = |token: String| {
            let other = &other;
            async move {
                other
                    .client
                    .get(other.url("/api/v1/whoami"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap()
            }
        };
        let answer = ask(identity.admin.clone()).await;
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(
            answer.json::<serde_json::Value>().await.unwrap()["subject"],
            ADMIN_ID
        );

        let rotation = identity
            .post(
                "/api/v1/keys/rotate",
                &identity.admin,
                &serde_json::json!({}),
            )
            .await;
        assert_eq!(rotation.status(), StatusCode::OK);
        let new_kid = rotation.json::<serde_json::Value>().await.unwrap()["kid"].clone();
        // The verifier may refetch for an unknown key once a second.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let rotated = identity.token(ADMIN_ID, ADMIN_SECRET).await;
        assert_eq!(
            header_kid(&rotated),
            new_kid.as_str().unwrap(),
            "signed with the new key"
        );
        assert_eq!(
            ask(rotated).await.status(),
            StatusCode::OK,
            "the new key was fetched"
        );
        assert_eq!(
            ask(identity.admin.clone()).await.status(),
            StatusCode::OK,
            "the old key still verifies"
        );
    }
}

/// Identity serves without Redis (and, in `outages`, without its broker); only
/// its database decides readiness.
mod degraded {
    use std::time::{Duration, Instant};

    use hotline_testkit::{Infra, Link, TcpProxy, eventually};
    use reqwest::StatusCode;
    use serde_json::{Value, json};

    use crate::helpers::{Identity, zhang_wei};

    /// Identity on the real backends with Redis behind a proxy, and the URL of
    /// Redis itself.
    async fn with_redis(link: Link) -> Option<(Identity, TcpProxy, String)> {
        let mut infra = Infra::real().await?;
        let redis = infra.redis_url.clone();
        let (proxy, url) = TcpProxy::in_front_of(&redis, 6379, link).await;
        infra.redis_url = url;
        Some((Identity::spawn(infra).await, proxy, redis))
    }

    async fn cached(redis: &str, key: &str) -> Option<Value> {
        let mut connection = redis::Client::open(redis)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let value: Option<String> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap();
        value.map(|text| serde_json::from_str(&text).unwrap())
    }

    /// `count` screen pops of Zhang Wei's mobile, each answered within a second
    /// (a generous bound: it proves no wait on Redis) with `name`. Returns their
    /// latencies, sorted.
    async fn pops(app: &Identity, count: usize, name: &str) -> Vec<Duration> {
        let mut took = Vec::with_capacity(count);
        for _ in 0..count {
            let started = Instant::now();
            let popped = app.lookup("13800138000", &app.admin).await;
            let elapsed = started.elapsed();
            assert!(
                elapsed < Duration::from_secs(1),
                "a screen pop took {elapsed:?}"
            );
            assert_eq!(popped["candidates"][0]["customer"]["name"], name);
            took.push(elapsed);
        }
        took.sort();
        took
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn starts_and_pops_screens_with_redis_down_then_refills_the_cache() {
        let Some((app, proxy, redis)) = with_redis(Link::Down).await else {
            return;
        };
        app.create(zhang_wei()).await;
        let took = pops(&app, 200, "张伟").await;
        eprintln!(
            "200 screen pops with redis down: p50 {:?}, p99 {:?}, max {:?}",
            took[99], took[197], took[199]
        );
        let key = app.lookup_cache_key("+8613800138000");
        assert_eq!(cached(&redis, &key).await, None);

        proxy.set(Link::Up);
        let refilled = eventually(Duration::from_secs(10), || async {
            app.lookup("13800138000", &app.admin).await;
            cached(&redis, &key).await.is_some()
        })
        .await;
        assert!(refilled, "the cache refills on use once redis answers");
        let took = pops(&app, 200, "张伟").await;
        eprintln!(
            "200 screen pops with redis up: p50 {:?}, p99 {:?}, max {:?}",
            took[99], took[197], took[199]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn screen_pops_survive_redis_dying_mid_run() {
        let Some((app, proxy, redis)) = with_redis(Link::Up).await else {
            return;
        };
        let created = app.create(zhang_wei()).await;
        app.lookup("13800138000", &app.admin).await;
        let key = app.lookup_cache_key("+8613800138000");
        assert!(cached(&redis, &key).await.is_some(), "cached while up");

        proxy.set(Link::Down);
        pops(&app, 50, "张伟").await;
        // A change while Redis is gone: its invalidation can't reach Redis yet.
        let changed = app
            .request(
                reqwest::Method::PATCH,
                &format!("/api/v1/customers/{}", created["id"].as_str().unwrap()),
                &app.admin,
            )
            .json(&json!({"name": "张伟二"}))
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), StatusCode::OK);
        pops(&app, 20, "张伟二").await;

        proxy.set(Link::Up);
        let refilled = eventually(Duration::from_secs(10), || async {
            app.lookup("13800138000", &app.admin).await;
            cached(&redis, &key)
                .await
                .is_some_and(|entry| entry["candidates"][0]["customer"]["name"] == "张伟二")
        })
        .await;
        assert!(refilled, "the cache refills with the changed customer");
        pops(&app, 5, "张伟二").await;
    }

    /// The agent's screen pop sends the cached JSON as it is: an entry of
    /// another shape (an older version's, or one written by hand) must never
    /// reach the agent, and is replaced from the database.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cached_entry_of_another_shape_is_replaced_not_served() {
        let Some((app, _proxy, redis)) = with_redis(Link::Up).await else {
            return;
        };
        let created = app.create(zhang_wei()).await;
        let agent = app.token_for(&["agent"], None).await;
        app.lookup("13800138000", &agent).await;
        let key = app.lookup_cache_key("+8613800138000");
        let mut connection = redis::Client::open(redis.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(r#"{"candidates":"another shape"}"#)
            .arg("EX")
            .arg(300)
            .query_async(&mut connection)
            .await
            .unwrap();

        let replaced = eventually(Duration::from_secs(10), || async {
            let popped = app.lookup("13800138000", &agent).await;
            assert_ne!(popped["candidates"], "another shape", "served as cached");
            popped["candidates"][0]["customer"]["id"] == created["id"]
                && cached(&redis, &key)
                    .await
                    .is_some_and(|entry| entry["candidates"][0]["customer"]["id"] == created["id"])
        })
        .await;
        assert!(replaced, "the entry is rebuilt from the database");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn not_ready_without_the_database_and_ready_again_when_it_returns() {
        let Some(mut infra) = Infra::real().await else {
            return;
        };
        let (proxy, url) = TcpProxy::in_front_of(&infra.database_url, 5432, Link::Up).await;
        infra.database_url = url;
        let app = Identity::spawn(infra).await;
        let readiness = || async {
            app.app
                .client
                .get(app.app.url("/readyz"))
                .send()
                .await
                .unwrap()
                .status()
        };
        assert_eq!(readiness().await, StatusCode::OK);

        proxy.set(Link::Down);
        let lost = eventually(Duration::from_secs(10), || async {
            readiness().await == StatusCode::SERVICE_UNAVAILABLE
        })
        .await;
        assert!(lost, "503 without the database");

        proxy.set(Link::Up);
        let back = eventually(Duration::from_secs(20), || async {
            readiness().await == StatusCode::OK
        })
        .await;
        assert!(back, "ready again without a restart");
    }
}
