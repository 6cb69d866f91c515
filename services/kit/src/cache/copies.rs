//! What a process keeps in memory of the Redis entries it read, so that a
//! repeated read costs no round trip (Redis's server-assisted client-side
//! caching, RESP3 tracking). Redis tells the connection when any replica
//! changes, drops or expires a key it read; three rules keep a copy from
//! outliving a change:
//! - a read files its answer only if no invalidation arrived since it was
//!   sent (the answer may predate the change the invalidation announced: the
//!   in-flight race redis-rs's own cache leaves open);
//! - a lost connection drops every copy (its invalidations are gone);
//! - copies are served only while Redis has answered a heartbeat asked at most
//!   `FRESHNESS` ago: invalidations travel ahead of that answer on the same
//!   connection, so a link cut off without either side noticing is bounded too.

use std::{
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use moka::{Expiry, sync::Cache as Moka};
use redis::{FromRedisValue, PushInfo, PushKind, Value};

/// The longest a copy is served after the last heartbeat Redis answered was
/// asked: the bound on how stale a copy can be when its invalidation can't
/// reach this process.
pub const FRESHNESS: Duration = Duration::from_secs(1);
/// How often the connection is confirmed, well inside `FRESHNESS`.
pub const HEARTBEAT: Duration = Duration::from_millis(250);
/// A copy's longest life however often it is confirmed (a safety net: Redis
/// announces expiries too).
const LONGEST: Duration = Duration::from_secs(300);

#[derive(Clone)]
struct Held {
    value: Vec<u8>,
    ttl: Duration,
}

struct OwnTtl;

impl Expiry<String, Held> for OwnTtl {
    fn expire_after_create(&self, _key: &String, held: &Held, _now: Instant) -> Option<Duration> {
        Some(held.ttl)
    }
}

pub struct Copies {
    entries: Moka<String, Held>,
    /// Counts invalidations; held while one is applied or a read is filed.
    generation: Mutex<u64>,
    started: Instant,
    /// Microseconds from `started` to when the last answered heartbeat was
    /// asked, plus one (0: none yet).
    confirmed: AtomicU64,
}

impl Copies {
    pub fn new(capacity: u64) -> Self {
        Self {
            entries: Moka::builder()
                .max_capacity(capacity)
                .expire_after(OwnTtl)
                .build(),
            generation: Mutex::new(0),
            started: Instant::now(),
            confirmed: AtomicU64::new(0),
        }
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        if !self.fresh() {
            return None;
        }
        self.entries.get(key).map(|held| held.value)
    }

    /// To take before a read is sent, and give back to `keep`.
    pub fn generation(&self) -> u64 {
        *self.lock()
    }

    /// Files what a read sent at `generation` answered, unless an invalidation
    /// came in meanwhile. `server_ttl_ms` is Redis's PTTL of the key.
    pub fn keep(&self, key: &str, value: &[u8], server_ttl_ms: i64, generation: u64) {
        let ttl = u64::try_from(server_ttl_ms)
            .ok()
            .filter(|ms| *ms > 0)
            .map_or(LONGEST, |ms| Duration::from_millis(ms).min(LONGEST));
        let current = self.lock();
        if *current == generation {
            let held = Held {
                value: value.to_vec(),
                ttl,
            };
            self.entries.insert(key.to_owned(), held);
        }
    }

    pub fn invalidate<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        let mut generation = self.lock();
        *generation += 1;
        for key in keys {
            self.entries.invalidate(key);
        }
    }

    pub fn clear(&self) {
        let mut generation = self.lock();
        *generation += 1;
        self.entries.invalidate_all();
    }

    /// Redis answered a heartbeat asked at `asked`.
    pub fn confirmed(&self, asked: Instant) {
        let micros = micros(asked.saturating_duration_since(self.started)) + 1;
        self.confirmed.fetch_max(micros, Ordering::Relaxed);
    }

    fn fresh(&self) -> bool {
        let confirmed = self.confirmed.load(Ordering::Relaxed);
        confirmed > 0 && micros(self.started.elapsed()) < confirmed + micros(FRESHNESS)
    }

    /// What the connection pushes: invalidations (a null one after FLUSHALL),
    /// and redis-rs's own notice that the connection is gone.
    pub fn pushed(&self, push: &PushInfo) {
        match (&push.kind, push.data.first()) {
            (PushKind::Invalidate, Some(Value::Array(keys))) => {
                let keys: Vec<String> = keys
                    .iter()
                    .filter_map(|key| String::from_redis_value_ref(key).ok())
                    .collect();
                self.invalidate(keys.iter().map(String::as_str));
            }
            (PushKind::Invalidate, _) | (PushKind::Disconnection, _) => self.clear(),
            _ => {}
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        self.generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confirmed_copies() -> Copies {
        let copies = Copies::new(100);
        copies.confirmed(Instant::now());
        copies
    }

    fn invalidation(keys: &[&str]) -> PushInfo {
        let keys = keys
            .iter()
            .map(|key| Value::BulkString(key.as_bytes().to_vec()))
            .collect();
        PushInfo {
            kind: PushKind::Invalidate,
            data: vec![Value::Array(keys)],
        }
    }

    #[test]
    fn an_answer_overtaken_by_an_invalidation_is_not_kept() {
        let copies = confirmed_copies();
        let sent = copies.generation();
        copies.pushed(&invalidation(&["k"]));
        copies.keep("k", b"old", -1, sent);
        assert_eq!(copies.get("k"), None);

        let sent = copies.generation();
        copies.keep("k", b"new", -1, sent);
        assert_eq!(copies.get("k"), Some(b"new".to_vec()));
        copies.pushed(&invalidation(&["other", "k"]));
        assert_eq!(copies.get("k"), None);
    }

    #[test]
    fn a_lost_connection_or_a_flush_drops_every_copy() {
        let copies = confirmed_copies();
        for push in [
            PushInfo {
                kind: PushKind::Disconnection,
                data: vec![],
            },
            PushInfo {
                kind: PushKind::Invalidate,
                data: vec![Value::Nil],
            },
        ] {
            copies.keep("a", b"1", -1, copies.generation());
            copies.keep("b", b"2", 60_000, copies.generation());
            copies.pushed(&push);
            assert_eq!((copies.get("a"), copies.get("b")), (None, None));
        }
    }

    #[test]
    fn copies_are_served_only_while_confirmed_and_within_the_keys_ttl() {
        let copies = Copies::new(100);
        copies.keep("k", b"v", -1, copies.generation());
        assert_eq!(copies.get("k"), None, "never confirmed");
        copies.confirmed(Instant::now());
        assert_eq!(copies.get("k"), Some(b"v".to_vec()));
        std::thread::sleep(FRESHNESS + Duration::from_millis(20));
        assert_eq!(copies.get("k"), None, "confirmed too long ago");
        copies.confirmed(Instant::now());
        assert_eq!(copies.get("k"), Some(b"v".to_vec()));

        copies.keep("short", b"v", 30, copies.generation());
        std::thread::sleep(Duration::from_millis(80));
        copies.confirmed(Instant::now());
        assert_eq!(copies.get("short"), None, "outlived the key in Redis");
        assert_eq!(copies.get("k"), Some(b"v".to_vec()));
    }
}
