//! The stale-cache guard: a controller's cache lags behind its own writes
//! until their watch events arrive, and a sync that runs in between must not
//! act on the old picture.
//!
//! Each controller records what its writes expect the cache to show, in an
//! [`Expectations`] store: [`ObjectVersions`] for one object per key (the
//! Endpoints controller; upstream's `staleEndpointsTracker`, extended to
//! creates), or the EndpointSlice tracker for sets of slices
//! ([`EndpointSliceTracker`](crate::slices::EndpointSliceTracker)). A sync
//! first asks the [`StaleCacheGuard`] whether the cache is behind; if so it
//! fails with a stale-cache error and the work queue retries it with
//! back-off. The guard also remembers which keys wait, so that an event
//! handler can queue a key again the moment the cache has caught up
//! ([`StaleCacheGuard::caught_up`]) instead of waiting out the back-off.
//! That wake-up is what brings back a key the work queue dropped after too
//! many stale-cache failures, so it must not be missed: a sync marks its
//! key waiting ([`StaleCacheGuard::begin_read`]) *before* it reads the
//! cache, so an event that lands between the read and the check still
//! finds the key waiting and re-checks it against the newer cache.
//!
//! Expectations belong to one incarnation of the owner: a Service deleted
//! and re-created under the same name while an informer was relisting is
//! seen as an update with a new uid, and the slices the controller wrote
//! for the old one may be garbage-collected without the slice informer
//! ever seeing them. [`StaleCacheGuard::owned_by`] drops the expectations
//! of an earlier uid, which no event would ever meet.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ecm_informer::ObjectKey;
use parking_lot::Mutex;

/// What a controller's own writes expect its cache to show, per key.
pub trait Expectations: Send + Sync {
    /// What the cache holds for a key, as this store compares it.
    type Cached<'a>;

    /// Whether `cached` is older than this controller's own last write of
    /// `key`. May forget an expectation the cache has met.
    fn is_stale(&self, key: &ObjectKey, cached: Self::Cached<'_>) -> bool;

    /// Like [`is_stale`](Self::is_stale), but never forgets anything: an
    /// event handler's look must leave the expectations for the sync it
    /// wakes (which may still be running on an older read).
    fn peek_stale(&self, key: &ObjectKey, cached: Self::Cached<'_>) -> bool;

    /// Forgets every expectation of `key` (its object or owner is gone).
    fn forget(&self, key: &ObjectKey);

    /// The owner of `key` was replaced by a new object of the same name:
    /// what was written for the old one must no longer make the cache
    /// stale. Forgets everything unless the store has more to keep.
    fn owner_replaced(&self, key: &ObjectKey) {
        self.forget(key);
    }
}

/// What one object write expects.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expectation {
    /// The controller replaced this resourceVersion; the cache must move past it.
    Replaced(String),
    /// The controller created the object; the cache must show it.
    Created,
}

/// [`Expectations`] for one object per key, by resourceVersion.
///
/// Upstream remembers the resourceVersion each successful update replaced
/// and fails a sync that still reads it from the cache. ecm does the same
/// for creates: after creating an object it expects the cache to show one,
/// so a sync in between is retried instead of creating it again (upstream
/// gets `AlreadyExists`, a Warning event and a retry). An expectation ends
/// when the cache meets it or the key is forgotten.
///
/// ```
/// use ecm_controller::stale::{Expectations, ObjectVersions};
/// use ecm_informer::ObjectKey;
///
/// let versions = ObjectVersions::default();
/// let key = ObjectKey::new("ns", "web");
/// versions.updated(&key, "5", "6");
/// assert!(versions.is_stale(&key, Some("5")));
/// assert!(!versions.is_stale(&key, Some("6")));
/// ```
#[derive(Debug, Default)]
pub struct ObjectVersions {
    expectations: Mutex<HashMap<ObjectKey, Expectation>>,
}

impl ObjectVersions {
    /// Records a successful update that moved `key` from `old_rv` to
    /// `new_rv`. An update that returned the same resourceVersion changed
    /// nothing and is not remembered (upstream's fix for over-capacity
    /// objects).
    pub fn updated(&self, key: &ObjectKey, old_rv: &str, new_rv: &str) {
        if old_rv != new_rv {
            self.expectations
                .lock()
                .insert(key.clone(), Expectation::Replaced(old_rv.to_owned()));
        }
    }

    /// Records a successful create of `key`.
    pub fn created(&self, key: &ObjectKey) {
        self.expectations.lock().insert(key.clone(), Expectation::Created);
    }

    /// Whether a create of `key` by this controller has not shown up in the
    /// cache yet.
    pub fn create_pending(&self, key: &ObjectKey) -> bool {
        self.expectations.lock().get(key) == Some(&Expectation::Created)
    }
}

/// Whether a cache showing `cached_rv` is behind `expectation`.
fn stale_against(expectation: Option<&Expectation>, cached_rv: Option<&str>) -> bool {
    match (expectation, cached_rv) {
        (Some(Expectation::Created), cached) => cached.is_none(),
        (Some(Expectation::Replaced(old)), Some(cached)) => cached == old,
        (None, _) | (Some(Expectation::Replaced(_)), None) => false,
    }
}

impl Expectations for ObjectVersions {
    /// The cached object's resourceVersion; `None` when the cache has none.
    type Cached<'a> = Option<&'a str>;

    fn is_stale(&self, key: &ObjectKey, cached_rv: Option<&str>) -> bool {
        let mut expectations = self.expectations.lock();
        let stale = stale_against(expectations.get(key), cached_rv);
        if !stale {
            expectations.remove(key);
        }
        stale
    }

    fn peek_stale(&self, key: &ObjectKey, cached_rv: Option<&str>) -> bool {
        stale_against(self.expectations.lock().get(key), cached_rv)
    }

    fn forget(&self, key: &ObjectKey) {
        self.expectations.lock().remove(key);
    }
}

/// An [`Expectations`] store plus the keys whose last sync found the cache
/// behind it.
///
/// ```
/// use std::sync::Arc;
/// use ecm_controller::stale::{ObjectVersions, StaleCacheGuard};
/// use ecm_informer::ObjectKey;
///
/// let guard = StaleCacheGuard::new(Arc::new(ObjectVersions::default()));
/// let key = ObjectKey::new("ns", "web");
/// guard.expectations().created(&key);
/// guard.begin_read(&key);
/// assert!(guard.is_behind(&key, None), "the create has not shown up yet");
/// assert!(guard.is_waiting(&key));
/// assert!(guard.caught_up(&key, Some("1")), "now it has: wake the key");
/// assert!(!guard.is_waiting(&key));
/// ```
#[derive(Debug)]
pub struct StaleCacheGuard<E> {
    expectations: Arc<E>,
    /// Keys whose last check found the cache behind; removed when a later
    /// check or [`caught_up`](Self::caught_up) finds it current, or on
    /// [`forget`](Self::forget).
    waiting: Mutex<HashSet<ObjectKey>>,
    /// The uid of the owner incarnation the expectations of each key were
    /// recorded for ([`owned_by`](Self::owned_by)).
    owners: Mutex<HashMap<ObjectKey, String>>,
}

impl<E: Expectations> StaleCacheGuard<E> {
    /// A guard over `expectations`, which the controller's writers record
    /// into.
    pub fn new(expectations: Arc<E>) -> Self {
        Self {
            expectations,
            waiting: Mutex::default(),
            owners: Mutex::default(),
        }
    }

    /// The expectations store.
    pub fn expectations(&self) -> &Arc<E> {
        &self.expectations
    }

    /// Notes that the owner of `key` (the Service, say) is the object with
    /// `uid`; call it at the start of each sync that found the owner. When
    /// the owner was re-created since the last call (another uid), the
    /// expectations recorded for the earlier one are dropped
    /// ([`Expectations::owner_replaced`]): what was
    /// written for it is garbage, possibly collected without the cache ever
    /// showing it, and would keep every sync of `key` stale forever.
    pub fn owned_by(&self, key: &ObjectKey, uid: &str) {
        let mut owners = self.owners.lock();
        match owners.get(key) {
            Some(known) if known == uid => {}
            Some(_) => {
                tracing::debug!(owner = %key, uid, "owner re-created, forgetting the expectations of the old one");
                self.expectations.owner_replaced(key);
                owners.insert(key.clone(), uid.to_owned());
            }
            None => {
                owners.insert(key.clone(), uid.to_owned());
            }
        }
    }

    /// Marks `key` as waiting before a sync reads its cache for
    /// [`is_behind`](Self::is_behind): an event that updates the cache
    /// after the read then finds the key waiting and wakes it
    /// ([`caught_up`](Self::caught_up)), even if the check that follows
    /// finds the read behind. Without it such a key would wait for a
    /// back-off retry that the work queue may no longer hold for it.
    pub fn begin_read(&self, key: &ObjectKey) {
        self.waiting.lock().insert(key.clone());
    }

    /// Whether the cache (`cached`) is behind this controller's own writes
    /// of `key`. A key found behind is remembered as waiting; call
    /// [`begin_read`](Self::begin_read) before reading `cached`.
    pub fn is_behind(&self, key: &ObjectKey, cached: E::Cached<'_>) -> bool {
        let behind = self.expectations.is_stale(key, cached);
        let mut waiting = self.waiting.lock();
        if behind {
            waiting.insert(key.clone());
        } else {
            waiting.remove(key);
        }
        behind
    }

    /// Whether `key`'s last check found the cache behind. Cheap: lets an
    /// event handler skip reading the cache for keys nobody waits for.
    pub fn is_waiting(&self, key: &ObjectKey) -> bool {
        self.waiting.lock().contains(key)
    }

    /// Whether `key` was waiting and the cache (`cached`) has now caught up;
    /// if so, `key` no longer waits and should be synced again now.
    pub fn caught_up(&self, key: &ObjectKey, cached: E::Cached<'_>) -> bool {
        let mut waiting = self.waiting.lock();
        if !waiting.contains(key) || self.expectations.peek_stale(key, cached) {
            return false;
        }
        waiting.remove(key);
        true
    }

    /// Forgets `key` entirely: its object or owner is gone.
    pub fn forget(&self, key: &ObjectKey) {
        self.waiting.lock().remove(key);
        self.owners.lock().remove(key);
        self.expectations.forget(key);
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
        let versions = ObjectVersions::default();
        versions.updated(&key(), "5", "6");
        assert!(versions.is_stale(&key(), Some("5")));
        assert!(versions.is_stale(&key(), Some("5")), "still stale on retry");
        assert!(!versions.is_stale(&key(), Some("6")));
        assert!(!versions.is_stale(&key(), Some("5")), "caught up once: forgotten");
    }

    #[test]
    fn update_returning_the_same_version_is_not_remembered() {
        let versions = ObjectVersions::default();
        versions.updated(&key(), "5", "5");
        assert!(!versions.is_stale(&key(), Some("5")));
    }

    #[test]
    fn created_object_missing_from_the_cache_is_stale() {
        let versions = ObjectVersions::default();
        versions.created(&key());
        assert!(versions.create_pending(&key()));
        assert!(versions.is_stale(&key(), None));
        assert!(!versions.is_stale(&key(), Some("1")));
        assert!(!versions.create_pending(&key()));
    }

    #[test]
    fn forgetting_clears_expectations_and_waiting() {
        let guard = StaleCacheGuard::new(Arc::new(ObjectVersions::default()));
        guard.expectations().created(&key());
        assert!(guard.is_behind(&key(), None));
        guard.forget(&key());
        assert!(!guard.is_waiting(&key()));
        assert!(!guard.is_behind(&key(), None));
        assert!(!guard.is_behind(&ObjectKey::new("other", "x"), None));
    }

    #[test]
    fn only_a_waiting_key_is_woken_and_only_once() {
        let guard = StaleCacheGuard::new(Arc::new(ObjectVersions::default()));
        assert!(!guard.caught_up(&key(), Some("1")), "nobody waits");
        guard.expectations().updated(&key(), "1", "2");
        assert!(guard.is_behind(&key(), Some("1")));
        assert!(!guard.caught_up(&key(), Some("1")), "still behind");
        assert!(guard.caught_up(&key(), Some("2")));
        assert!(!guard.caught_up(&key(), Some("2")), "woken once");
    }

    #[test]
    fn a_current_check_ends_the_wait() {
        let guard = StaleCacheGuard::new(Arc::new(ObjectVersions::default()));
        guard.expectations().created(&key());
        assert!(guard.is_behind(&key(), None));
        assert!(!guard.is_behind(&key(), Some("1")));
        assert!(!guard.is_waiting(&key()));
    }

    #[test]
    fn an_event_between_the_read_and_the_check_still_wakes_the_key() {
        // Chaos seed 10: the sync read the cache, the event bringing it up
        // to date ran before the sync marked the key waiting, and the key,
        // dropped by the queue after too many stale failures, never came
        // back.
        let guard = StaleCacheGuard::new(Arc::new(ObjectVersions::default()));
        guard.expectations().updated(&key(), "1", "2");
        guard.begin_read(&key());
        let read = Some("1");
        assert!(guard.caught_up(&key(), Some("2")), "the event wakes the key");
        assert!(guard.is_behind(&key(), read), "the sync's older read is still behind");
        guard.begin_read(&key());
        assert!(!guard.is_behind(&key(), Some("2")), "the woken sync is current");
        assert!(!guard.is_waiting(&key()));
    }

    #[test]
    fn waking_leaves_the_expectations_to_the_sync() {
        let guard = StaleCacheGuard::new(Arc::new(ObjectVersions::default()));
        guard.expectations().updated(&key(), "1", "2");
        guard.begin_read(&key());
        assert!(guard.is_behind(&key(), Some("1")));
        assert!(guard.caught_up(&key(), Some("2")));
        assert!(
            guard.expectations().is_stale(&key(), Some("1")),
            "not consumed by the wake-up"
        );
    }

    fn slice(uid: &str) -> k8s_openapi::api::discovery::v1::EndpointSlice {
        let mut slice = k8s_openapi::api::discovery::v1::EndpointSlice::default();
        slice.metadata.namespace = Some("ns".into());
        slice.metadata.uid = Some(uid.into());
        slice.metadata.generation = Some(1);
        slice.metadata.labels = Some(std::collections::BTreeMap::from([(
            ecm_types::wellknown::LABEL_SERVICE_NAME.to_owned(),
            "web".to_owned(),
        )]));
        slice
    }

    #[test]
    fn a_recreated_owner_drops_the_expectations_of_the_old_one() {
        // Chaos seed 28: svc-1 deleted and re-created while the informers
        // relisted; a slice written for the old Service was collected
        // without the slice informer ever seeing it, and every later sync
        // of svc-1 was stale.
        let guard = StaleCacheGuard::new(Arc::new(crate::slices::EndpointSliceTracker::new()));
        guard.owned_by(&key(), "svc-uid-1");
        guard.expectations().update(&slice("slice-of-old-service"));
        guard.begin_read(&key());
        assert!(guard.is_behind(&key(), &[]), "the written slice is not listed yet");
        guard.owned_by(&key(), "svc-uid-1");
        assert!(guard.is_behind(&key(), &[]), "same Service: still waiting for it");
        guard.owned_by(&key(), "svc-uid-2");
        assert!(!guard.is_behind(&key(), &[]), "new Service: the old slice is garbage");
        guard.expectations().update(&slice("slice-of-new-service"));
        guard.owned_by(&key(), "svc-uid-2");
        assert!(guard.is_behind(&key(), &[]), "the new Service's own writes still count");
    }
}
