//! A small map whose entries expire, for review answers: upstream caches
//! TokenReview and SubjectAccessReview results for a few seconds so that a
//! scrape every few seconds costs no request to the API server.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// At most this many entries; when full, expired entries are dropped, and
/// if none had expired, everything is (the next requests review again).
const CAPACITY: usize = 4096;

/// Entries that expire a set time after they were put.
#[derive(Debug)]
pub struct ExpiringCache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> Default for ExpiringCache<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> ExpiringCache<K, V> {
    /// The value of `key`, unless absent or expired.
    pub fn get(&self, key: &K) -> Option<V> {
        let mut entries = self.entries.lock();
        match entries.get(key) {
            Some((value, expires)) if *expires > Instant::now() => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` for `ttl` (a zero `ttl` keeps nothing).
    pub fn put(&self, key: K, value: V, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock();
        if entries.len() >= CAPACITY {
            entries.retain(|_, (_, expires)| *expires > now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (value, now + ttl));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_their_ttl() {
        let cache = ExpiringCache::default();
        cache.put("a", 1, Duration::from_secs(10));
        cache.put("b", 2, Duration::ZERO);
        assert_eq!(cache.get(&"a"), Some(1));
        assert_eq!(cache.get(&"b"), None, "a zero TTL caches nothing");
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(cache.get(&"a"), Some(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(cache.get(&"a"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_cache_makes_room() {
        let cache = ExpiringCache::default();
        for i in 0..CAPACITY {
            cache.put(i, i, Duration::from_secs(1));
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        cache.put(CAPACITY, 0, Duration::from_secs(1));
        assert_eq!(cache.entries.lock().len(), 1, "expired entries were dropped");
    }
}
