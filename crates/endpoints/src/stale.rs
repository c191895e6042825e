//! The stale-cache guard (upstream's `staleEndpointsTracker`, extended to
//! creates).
//!
//! After this controller writes an Endpoints object, its informer cache
//! lags until the watch event arrives. A sync that runs in between would
//! compare against the old object and could wrongly decide nothing needs
//! writing, or write on top of a stale resourceVersion. Upstream remembers
//! the resourceVersion each successful update replaced and fails a sync that
//! still reads it from the cache; the work queue retries it with backoff once
//! the cache has caught up.
//!
//! ecm does the same for creates: after creating an object it remembers that
//! the cache must show it, so a sync in between is retried instead of trying
//! to create it again (upstream gets an `AlreadyExists` error, a Warning
//! event and a retry). The expectation ends when the object shows up or is
//! deleted.

use std::collections::HashMap;
use std::sync::Mutex;

use ecm_types::ObjectKey;

/// What this controller expects the cache to show for one key.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expectation {
    /// The controller replaced this resourceVersion; the cache must move past it.
    Replaced(String),
    /// The controller created the object; the cache must show it.
    Created,
}

/// Per key, the cache state this controller knows to be out of date.
#[derive(Debug, Default)]
pub struct StaleTracker {
    expectations: Mutex<HashMap<ObjectKey, Expectation>>,
}

impl StaleTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, Expectation>> {
        // Plain map operations cannot leave it inconsistent if another worker panicked.
        self.expectations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a successful update that moved `key` from `old_rv` to `new_rv`.
    /// An update that returned the same resourceVersion changed nothing and is
    /// not remembered (upstream's fix for over-capacity objects).
    pub fn updated(&self, key: &ObjectKey, old_rv: &str, new_rv: &str) {
        if old_rv != new_rv {
            self.lock()
                .insert(key.clone(), Expectation::Replaced(old_rv.to_owned()));
        }
    }

    /// Records a successful create of `key`.
    pub fn created(&self, key: &ObjectKey) {
        self.lock().insert(key.clone(), Expectation::Created);
    }

    /// Whether the cached state of `key` (`None` when the cache has no
    /// object, else its resourceVersion) is older than this controller's own
    /// last write. A cache that caught up clears the expectation.
    pub fn is_stale(&self, key: &ObjectKey, cached_rv: Option<&str>) -> bool {
        let mut expectations = self.lock();
        let stale = match (expectations.get(key), cached_rv) {
            (Some(Expectation::Created), cached) => cached.is_none(),
            (Some(Expectation::Replaced(old)), Some(cached)) => cached == old,
            (None, _) | (Some(Expectation::Replaced(_)), None) => false,
        };
        if !stale {
            expectations.remove(key);
        }
        stale
    }

    /// Whether a create of `key` by this controller has not shown up in the
    /// cache yet.
    pub fn create_pending(&self, key: &ObjectKey) -> bool {
        self.lock().get(key) == Some(&Expectation::Created)
    }

    /// Forgets `key`: its object or its Service was deleted.
    pub fn forget(&self, key: &ObjectKey) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ObjectKey {
        ObjectKey::new("ns", "web")
    }

    #[test]
    fn cache_showing_the_replaced_version_is_stale_until_it_moves() {
        let tracker = StaleTracker::default();
        tracker.updated(&key(), "5", "6");
        assert!(tracker.is_stale(&key(), Some("5")));
        assert!(tracker.is_stale(&key(), Some("5")), "still stale on retry");
        assert!(!tracker.is_stale(&key(), Some("6")));
        assert!(!tracker.is_stale(&key(), Some("5")), "caught up once: forgotten");
    }

    #[test]
    fn update_returning_the_same_version_is_not_remembered() {
        let tracker = StaleTracker::default();
        tracker.updated(&key(), "5", "5");
        assert!(!tracker.is_stale(&key(), Some("5")));
    }

    #[test]
    fn created_object_missing_from_the_cache_is_stale() {
        let tracker = StaleTracker::default();
        tracker.created(&key());
        assert!(tracker.create_pending(&key()));
        assert!(tracker.is_stale(&key(), None));
        assert!(!tracker.is_stale(&key(), Some("1")));
        assert!(!tracker.create_pending(&key()));
    }

    #[test]
    fn forgetting_clears_expectations() {
        let tracker = StaleTracker::default();
        tracker.created(&key());
        tracker.forget(&key());
        assert!(!tracker.is_stale(&key(), None));
        assert!(!tracker.is_stale(&ObjectKey::new("other", "x"), None));
    }
}
