//! Redis is a cache, never needed to serve: down at start or dying mid-run, it
//! costs a request a bounded moment and soon nothing (its circuit opens), shows
//! in `/metrics`, and is used again once it answers, without the entries
//! invalidated meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use hotline_kit::{
    cache::{Cache, RedisCache},
    metrics,
};
use hotline_testkit::{Infra, Link, TcpProxy, eventually};

/// The gauges are per process: the scenarios take turns.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The value of the series `series` (name and labels) in `/metrics`.
fn sample(series: &str) -> Option<f64> {
    metrics::render().lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|value| value.trim().parse().ok())
    })
}

fn redis_up() -> Option<f64> {
    sample(r#"hotline_dependency_up{dependency="redis"}"#)
}

fn breaker(state: &str) -> Option<f64> {
    sample(&format!(
        r#"hotline_circuit_breaker_state{{dependency="redis",state="{state}"}}"#
    ))
}

/// Reads `key` many times; each read must answer within a second (no hang on
/// a Redis that is gone) and miss.
async fn reads_miss_promptly(cache: &Cache, key: &str) {
    for _ in 0..30 {
        let started = Instant::now();
        let value: Option<String> = cache.get_json(key).await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a cache read took {:?}",
            started.elapsed()
        );
        assert_eq!(value, None);
    }
}

/// Waits until a value written through `cache` can be read back.
async fn used_again(cache: &Cache) -> bool {
    let probe = cache.key("probe", "1");
    eventually(Duration::from_secs(10), || async {
        cache
            .set_json(&probe, &"back", Duration::from_secs(60))
            .await;
        cache.get_json::<String>(&probe).await.as_deref() == Some("back")
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_start_is_skipped_until_it_answers() {
    let Some(infra) = Infra::real().await else {
        return;
    };
    let _turn = TURN.lock().await;
    metrics::handle();
    let (proxy, url) = TcpProxy::in_front_of(&infra.redis_url, 6379, Link::Down).await;
    let backend = RedisCache::connect(&url)
        .await
        .expect("starts without redis");
    let cache = Cache::new(Arc::new(backend), &infra.run_id, "kit");
    assert_eq!(redis_up(), Some(0.0));
    assert_eq!(breaker("open"), Some(1.0));

    let key = cache.key("entity", "1");
    cache
        .set_json(&key, &"value", Duration::from_secs(60))
        .await;
    reads_miss_promptly(&cache, &key).await;
    let text = metrics::render();
    assert!(
        text.contains(
            r#"hotline_cache_operations_total{service="kit",operation="get",outcome="bypassed"}"#
        ),
        "{text}"
    );

    proxy.set(Link::Up);
    assert!(
        used_again(&cache).await,
        "the cache is used once redis answers"
    );
    assert_eq!(redis_up(), Some(1.0));
    assert_eq!(breaker("closed"), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_dying_mid_run_costs_no_waiting_and_loses_no_invalidation() {
    let Some(infra) = Infra::real().await else {
        return;
    };
    let _turn = TURN.lock().await;
    metrics::handle();
    let (proxy, url) = TcpProxy::in_front_of(&infra.redis_url, 6379, Link::Up).await;
    let cache = Cache::new(
        Arc::new(RedisCache::connect(&url).await.unwrap()),
        &infra.run_id,
        "kit",
    );
    let key = cache.key("entity", "1");
    cache
        .set_json(&key, &"before", Duration::from_secs(60))
        .await;
    assert_eq!(
        cache.get_json::<String>(&key).await.as_deref(),
        Some("before")
    );
    assert_eq!(redis_up(), Some(1.0));

    for link in [Link::Hanging, Link::Down] {
        proxy.set(link);
        reads_miss_promptly(&cache, &key).await;
        assert_eq!(redis_up(), Some(0.0), "{link:?}");
        assert_eq!(breaker("closed"), Some(0.0), "{link:?}");
        // A change while Redis is away: its invalidation can't reach Redis now.
        cache.delete(std::slice::from_ref(&key)).await;

        proxy.set(Link::Up);
        assert!(used_again(&cache).await, "{link:?}: used again");
        assert_eq!(
            cache.get_json::<String>(&key).await,
            None,
            "{link:?}: the entry invalidated during the outage is gone"
        );
        assert_eq!(redis_up(), Some(1.0));
        cache
            .set_json(&key, &"before", Duration::from_secs(60))
            .await;
    }
}
