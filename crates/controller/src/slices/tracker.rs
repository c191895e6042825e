//! The generations of the EndpointSlices a controller wrote, so it can tell
//! its own writes from other changes and a stale cache from a current one
//! (upstream's `EndpointSliceTracker`).
//!
//! After every create or update the controller records the generation the
//! API server returned; after every delete it records that the slice is
//! expected to go away. Informer events carrying exactly those states are
//! then the controller's own writes coming back and need no sync, and a
//! sync whose listed slices lag behind what was recorded is retried later
//! instead of writing on top of an outdated picture.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use k8s_openapi::api::discovery::v1::EndpointSlice;

use ecm_informer::ObjectKey;
use ecm_types::wellknown::LABEL_SERVICE_NAME;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use parking_lot::{Mutex, MutexGuard};

use crate::stale::Expectations;

/// What the tracker expects of one slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expected {
    /// The slice exists with this generation (or a later one).
    Generation(i64),
    /// The controller deleted the slice.
    Deletion,
    /// The controller wrote the slice for an earlier owner of the same
    /// name ([`EndpointSliceTracker::owner_replaced`]): whether or when the
    /// cache shows it says nothing about staleness, but its deletion by
    /// someone else (the garbage collector) still calls for a sync, since
    /// the new owner's sync may have kept it (a placeholder is reused
    /// whoever owns it, as upstream).
    Superseded,
}

/// Expected EndpointSlice generations, by Service and slice uid.
///
/// Slices are filed under the Service named by their
/// `kubernetes.io/service-name` label in their own namespace (a slice
/// without the label is filed under an empty name). Safe to share between
/// workers: one mutex guards all state, and every method holds it only for
/// its own short duration.
///
/// While a Service's writes are in flight ([`hold`](Self::hold)), the
/// watch may deliver their results before the API server's answers reach
/// the writer, so before their generations are recorded. Events for that
/// Service's slices are then held back instead of judged, and judged once
/// the writes are over and recorded: those that are still not the
/// controller's own call the requeue hook ([`on_requeue`](Self::on_requeue)).
/// Upstream judges such an event at once and syncs the Service again for
/// nothing (a full sync, for a large Service the expensive kind).
#[derive(Default)]
pub struct EndpointSliceTracker {
    state: Mutex<State>,
    /// Queues an owner whose held-back events turned out not to be the
    /// controller's own writes.
    requeue: OnceLock<Requeue>,
}

/// What an owner whose held-back events call for a sync is handed to.
type Requeue = Box<dyn Fn(&ObjectKey) + Send + Sync>;

#[derive(Debug, Default)]
struct State {
    /// Service key → slice uid → expectation. A Service is present once any
    /// of its slices was recorded, even if its map later became empty.
    services: HashMap<ObjectKey, HashMap<String, Expected>>,
    /// Services with writes in flight → the events held back meanwhile.
    held: HashMap<ObjectKey, Held>,
}

/// The events held back for one Service while its writes are in flight.
#[derive(Debug, Default)]
struct Held {
    /// Open holds ([`WriteHold`]s not yet dropped).
    holds: usize,
    /// The slices seen added or updated, by uid, with their generation.
    changed: Vec<(String, i64)>,
    /// The uids of slices seen deleted.
    deleted: Vec<String>,
}

impl std::fmt::Debug for EndpointSliceTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointSliceTracker")
            .field("state", &*self.lock())
            .field("requeue", &self.requeue.get().is_some())
            .finish()
    }
}

fn service_key(slice: &EndpointSlice) -> ObjectKey {
    meta_service_key(&slice.metadata)
}

/// The Service a slice with this metadata is filed under.
fn meta_service_key(meta: &ObjectMeta) -> ObjectKey {
    let service = meta.labels.as_ref().and_then(|l| l.get(LABEL_SERVICE_NAME));
    ObjectKey::new(
        meta.namespace.as_deref().unwrap_or_default(),
        service.map(String::as_str).unwrap_or_default(),
    )
}

fn uid(slice: &EndpointSlice) -> &str {
    slice.metadata.uid.as_deref().unwrap_or_default()
}

fn generation(slice: &EndpointSlice) -> i64 {
    slice.metadata.generation.unwrap_or_default()
}

impl State {
    /// Whether a slice of `service` at `generation` is news: the Service or
    /// the slice is untracked, or the generation is newer than recorded.
    fn is_news(&self, service: &ObjectKey, uid: &str, generation: i64) -> bool {
        let Some(slices) = self.services.get(service) else {
            return true;
        };
        match slices.get(uid) {
            Some(Expected::Generation(recorded)) => generation > *recorded,
            None | Some(Expected::Deletion | Expected::Superseded) => true,
        }
    }

    /// Forgets a deleted slice; whether someone else deleted it (see
    /// [`EndpointSliceTracker::handle_deletion`]).
    fn deleted_by_someone_else(&mut self, service: &ObjectKey, uid: &str) -> bool {
        self.services
            .get_mut(service)
            .and_then(|slices| slices.remove(uid))
            .is_some_and(|expected| matches!(expected, Expected::Generation(_) | Expected::Superseded))
    }

    /// Judges the events held for `service`, now that its writes are
    /// recorded: whether any calls for a sync.
    fn judge(&mut self, service: &ObjectKey, held: &Held) -> bool {
        let mut sync = false;
        for (uid, generation) in &held.changed {
            sync |= self.is_news(service, uid, *generation);
        }
        for uid in &held.deleted {
            sync |= self.deleted_by_someone_else(service, uid);
        }
        sync
    }
}

impl EndpointSliceTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The maps stay consistent even if a holder panicked: every change is
        // a single insert or remove.
        self.state.lock()
    }

    /// Sets what is called with an owner whose events, held back while its
    /// writes were in flight, call for a sync after all. Set once (by the
    /// slice handler that queues owners); later calls are ignored. Without
    /// it such events are judged and dropped.
    pub fn on_requeue(&self, requeue: impl Fn(&ObjectKey) + Send + Sync + 'static) {
        let _ = self.requeue.set(Box::new(requeue));
    }

    /// Holds back the events of `owner`'s slices until the returned guard is
    /// dropped: wrap the owner's writes and the recording of their results
    /// in it. Holds nest.
    pub fn hold(&self, owner: &ObjectKey) -> WriteHold<'_> {
        self.lock().held.entry(owner.clone()).or_default().holds += 1;
        WriteHold {
            tracker: self,
            owner: owner.clone(),
        }
    }

    /// Ends one hold of `owner`; at the last, judges what was held.
    fn release(&self, owner: &ObjectKey) {
        let sync = {
            let mut state = self.lock();
            let Some(held) = state.held.get_mut(owner) else {
                return;
            };
            held.holds -= 1;
            if held.holds > 0 {
                return;
            }
            let held = state.held.remove(owner).unwrap_or_default();
            state.judge(owner, &held)
        };
        if sync && let Some(requeue) = self.requeue.get() {
            requeue(owner);
        }
    }

    /// Whether the tracker has an expectation (a generation or a deletion)
    /// for `slice`.
    pub fn has(&self, slice: &EndpointSlice) -> bool {
        self.lock()
            .services
            .get(&service_key(slice))
            .is_some_and(|slices| slices.contains_key(uid(slice)))
    }

    /// Whether an informer event carrying `slice` calls for a sync of its
    /// Service: the Service or the slice is untracked, or the slice's
    /// generation is newer than the one recorded (someone else changed it).
    /// A slice expected to be deleted counts as older than any generation.
    ///
    /// While the Service's writes are in flight the event is held back and
    /// the answer is `false`; it is judged when the hold ends.
    pub fn should_sync(&self, slice: &EndpointSlice) -> bool {
        let service = service_key(slice);
        let mut state = self.lock();
        if let Some(held) = state.held.get_mut(&service) {
            held.changed.push((uid(slice).to_owned(), generation(slice)));
            return false;
        }
        state.is_news(&service, uid(slice), generation(slice))
    }

    /// Whether the slices listed for the Service `service` lag behind this
    /// controller's own writes: a listed slice is older than recorded or was
    /// deleted by the controller, or a recorded (not deleted) slice is
    /// missing from the list. A Service never recorded is never stale.
    pub fn stale_slices<'a, I>(&self, service: &ObjectKey, listed: I) -> bool
    where
        I: IntoIterator<Item = &'a EndpointSlice>,
    {
        let state = self.lock();
        let Some(recorded) = state.services.get(service) else {
            return false;
        };
        let mut seen = Vec::new();
        for slice in listed {
            match recorded.get(uid(slice)) {
                Some(Expected::Deletion) => return true,
                Some(Expected::Generation(g)) if *g > generation(slice) => return true,
                _ => {}
            }
            seen.push(uid(slice));
        }
        recorded
            .iter()
            .any(|(uid, expected)| matches!(expected, Expected::Generation(_)) && !seen.contains(&uid.as_str()))
    }

    /// Records the generation of `slice`, as returned by a create or update.
    pub fn update(&self, slice: &EndpointSlice) {
        self.written(&slice.metadata);
    }

    /// Records the generation of a slice from the metadata a create or
    /// update returned ([`ObjectWriter`](crate::ObjectWriter)'s answer).
    pub fn written(&self, meta: &ObjectMeta) {
        self.lock().services.entry(meta_service_key(meta)).or_default().insert(
            meta.uid.clone().unwrap_or_default(),
            Expected::Generation(meta.generation.unwrap_or_default()),
        );
    }

    /// Records that this controller deleted `slice`.
    pub fn expect_deletion(&self, slice: &EndpointSlice) {
        self.record(slice, Expected::Deletion);
    }

    fn record(&self, slice: &EndpointSlice, expected: Expected) {
        self.lock()
            .services
            .entry(service_key(slice))
            .or_default()
            .insert(uid(slice).to_owned(), expected);
    }

    /// Forgets `slice` after an informer reported its deletion. Returns
    /// whether the deletion was expected — `false` only when the slice was
    /// tracked with a generation, meaning someone else deleted a slice this
    /// controller wrote.
    ///
    /// While the Service's writes are in flight the deletion is held back
    /// and the answer is `true`; it is judged when the hold ends.
    pub fn handle_deletion(&self, slice: &EndpointSlice) -> bool {
        let service = service_key(slice);
        let mut state = self.lock();
        if let Some(held) = state.held.get_mut(&service) {
            held.deleted.push(uid(slice).to_owned());
            return true;
        }
        !state.deleted_by_someone_else(&service, uid(slice))
    }

    /// The Service `service` was re-created: every slice recorded for it
    /// becomes superseded — never stale, but its deletion by
    /// someone else still queues the Service (see
    /// [`handle_deletion`](Self::handle_deletion)).
    pub fn owner_replaced(&self, service: &ObjectKey) {
        if let Some(slices) = self.lock().services.get_mut(service) {
            for expected in slices.values_mut() {
                *expected = Expected::Superseded;
            }
        }
    }

    /// Forgets everything recorded for the Service `service` (called when the
    /// Service is gone).
    pub fn delete_service(&self, service: &ObjectKey) {
        self.lock().services.remove(service);
    }
}

/// Holds back the events of one owner's slices while it lives (see
/// [`EndpointSliceTracker::hold`]); dropping it judges them.
#[must_use = "the events are held only while the guard lives"]
pub struct WriteHold<'t> {
    tracker: &'t EndpointSliceTracker,
    owner: ObjectKey,
}

impl Drop for WriteHold<'_> {
    fn drop(&mut self) {
        self.tracker.release(&self.owner);
    }
}

impl std::fmt::Debug for WriteHold<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteHold").field("owner", &self.owner).finish()
    }
}

impl Expectations for EndpointSliceTracker {
    /// The slices the cache lists for the owner.
    type Cached<'a> = &'a [Arc<EndpointSlice>];

    fn is_stale(&self, key: &ObjectKey, cached: &[Arc<EndpointSlice>]) -> bool {
        self.stale_slices(key, cached.iter().map(AsRef::as_ref))
    }

    fn peek_stale(&self, key: &ObjectKey, cached: &[Arc<EndpointSlice>]) -> bool {
        self.stale_slices(key, cached.iter().map(AsRef::as_ref))
    }

    fn forget(&self, key: &ObjectKey) {
        self.delete_service(key);
    }

    fn owner_replaced(&self, key: &ObjectKey) {
        EndpointSliceTracker::owner_replaced(self, key);
    }
}

#[cfg(test)]
mod tests;
