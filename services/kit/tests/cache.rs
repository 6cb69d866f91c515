//! Redis is a cache, never needed to serve: down at start or dying mid-run, it
//! costs a request a bounded moment and soon nothing (its circuit opens), shows
//! in `/metrics`, and is used again once it answers, without the entries
//! invalidated meanwhile. What a process keeps of it in memory lives on while
//! Redis answers, follows every change another replica makes, and is served no
//! longer than `FRESHNESS` after Redis stopped answering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use hotline_kit::{
    cache::{Cache, FRESHNESS, RedisCache},
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
    let backend = RedisCache::connect(&url, 1_000)
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
        Arc::new(RedisCache::connect(&url, 1_000).await.unwrap()),
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
        // Once the copy in memory has lapsed, failed reads open the circuit.
        assert!(
            eventually(Duration::from_secs(10), || async {
                let _: Option<String> = cache.get_json(&key).await;
                redis_up() == Some(0.0)
            })
            .await,
            "{link:?}: the outage is noticed"
        );
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

/// Two replicas' caches on the same Redis, under the same prefix: a reader
/// behind the returned proxy and a writer connected directly.
async fn replicas(infra: &Infra) -> (TcpProxy, Cache, Cache) {
    let (proxy, url) = TcpProxy::in_front_of(&infra.redis_url, 6379, Link::Up).await;
    let replica = |url: String| async move {
        Cache::new(
            Arc::new(RedisCache::connect(&url, 1_000).await.unwrap()),
            &infra.run_id,
            "kit",
        )
    };
    let reader = replica(url).await;
    let writer = replica(infra.redis_url.clone()).await;
    (proxy, reader, writer)
}

/// Writes `value` at `key` through `writer`, then reads it through `reader`
/// (which now holds a copy).
async fn written_and_read(writer: &Cache, reader: &Cache, key: &str, value: &str) {
    writer.set_json(key, &value, Duration::from_secs(60)).await;
    assert_eq!(reader.get_json::<String>(key).await.as_deref(), Some(value));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_by_another_replica_reaches_the_copy_in_memory() {
    let Some(infra) = Infra::real().await else {
        return;
    };
    let _turn = TURN.lock().await;
    let (proxy, reader, writer) = replicas(&infra).await;
    let key = reader.key("entity", "copied");
    written_and_read(&writer, &reader, &key, "v1").await;

    // Served from memory: the reader's link carries nothing now.
    proxy.set(Link::Stalled);
    let (read, took) = read_cut_off(&reader, &key).await;
    assert_eq!(read.as_deref(), Some("v1"));
    assert!(
        took < Duration::from_millis(100),
        "a copy read took {took:?}"
    );
    proxy.set(Link::Up);
    assert!(used_again(&reader).await);

    let key = reader.key("entity", "changed");
    written_and_read(&writer, &reader, &key, "v1").await;
    writer.set_json(&key, &"v2", Duration::from_secs(60)).await;
    assert!(
        eventually(Duration::from_secs(2), || async {
            reader.get_json::<String>(&key).await.as_deref() == Some("v2")
        })
        .await,
        "the change reaches the reader's copy"
    );
    writer.delete(std::slice::from_ref(&key)).await;
    assert!(
        eventually(Duration::from_secs(2), || async {
            reader.get_json::<String>(&key).await.is_none()
        })
        .await,
        "the invalidation reaches the reader's copy"
    );
}

/// Reads `key` through `reader` while its link carries nothing: a copy, or
/// `None` after a wait for Redis (which must be short).
async fn read_cut_off(reader: &Cache, key: &str) -> (Option<String>, Duration) {
    let started = Instant::now();
    let read = reader.get_json::<String>(key).await;
    (read, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_lives_on_while_redis_confirms_the_connection() {
    let Some(infra) = Infra::real().await else {
        return;
    };
    let _turn = TURN.lock().await;
    let (proxy, reader, writer) = replicas(&infra).await;
    let key = reader.key("entity", "kept");
    written_and_read(&writer, &reader, &key, "v1").await;
    tokio::time::sleep(3 * FRESHNESS).await;

    proxy.set(Link::Stalled);
    let (read, took) = read_cut_off(&reader, &key).await;
    assert_eq!(read.as_deref(), Some("v1"), "the copy is gone");
    assert!(
        took < Duration::from_millis(100),
        "a copy read took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_from_redis_stops_serving_its_copy_within_freshness() {
    let Some(infra) = Infra::real().await else {
        return;
    };
    let _turn = TURN.lock().await;
    let (proxy, reader, writer) = replicas(&infra).await;
    let key = reader.key("entity", "1");
    written_and_read(&writer, &reader, &key, "before").await;

    // Neither side notices the cut; the change's invalidation can't reach the reader.
    proxy.set(Link::Stalled);
    writer
        .set_json(&key, &"after", Duration::from_secs(60))
        .await;
    tokio::time::sleep(FRESHNESS + Duration::from_millis(100)).await;
    for _ in 0..5 {
        let (read, took) = read_cut_off(&reader, &key).await;
        assert_eq!(read, None, "a stale copy was served");
        assert!(took < Duration::from_secs(1), "a read took {took:?}");
    }

    proxy.set(Link::Up);
    assert!(
        eventually(Duration::from_secs(10), || async {
            reader.get_json::<String>(&key).await.as_deref() == Some("after")
        })
        .await,
        "the reader reads Redis again once it answers"
    );
}
