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

use k8s_openapi::api::discovery::v1::EndpointSlice;

use std::sync::Arc;

use ecm_informer::ObjectKey;
use ecm_types::endpoint_slice::service_name;
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
#[derive(Debug, Default)]
pub struct EndpointSliceTracker {
    /// Service key → slice uid → expectation. A Service is present once any
    /// of its slices was recorded, even if its map later became empty.
    services: Mutex<HashMap<ObjectKey, HashMap<String, Expected>>>,
}

fn service_key(slice: &EndpointSlice) -> ObjectKey {
    ObjectKey::new(
        slice.metadata.namespace.clone().unwrap_or_default(),
        service_name(slice).unwrap_or_default(),
    )
}

fn uid(slice: &EndpointSlice) -> &str {
    slice.metadata.uid.as_deref().unwrap_or_default()
}

fn generation(slice: &EndpointSlice) -> i64 {
    slice.metadata.generation.unwrap_or_default()
}

impl EndpointSliceTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ObjectKey, HashMap<String, Expected>>> {
        // The maps stay consistent even if a holder panicked: every change is
        // a single insert or remove.
        self.services.lock()
    }

    /// Whether the tracker has an expectation (a generation or a deletion)
    /// for `slice`.
    pub fn has(&self, slice: &EndpointSlice) -> bool {
        self.lock()
            .get(&service_key(slice))
            .is_some_and(|slices| slices.contains_key(uid(slice)))
    }

    /// Whether an informer event carrying `slice` calls for a sync of its
    /// Service: the Service or the slice is untracked, or the slice's
    /// generation is newer than the one recorded (someone else changed it).
    /// A slice expected to be deleted counts as older than any generation.
    pub fn should_sync(&self, slice: &EndpointSlice) -> bool {
        let services = self.lock();
        let Some(slices) = services.get(&service_key(slice)) else {
            return true;
        };
        match slices.get(uid(slice)) {
            Some(Expected::Generation(recorded)) => generation(slice) > *recorded,
            None | Some(Expected::Deletion | Expected::Superseded) => true,
        }
    }

    /// Whether the slices listed for the Service `service` lag behind this
    /// controller's own writes: a listed slice is older than recorded or was
    /// deleted by the controller, or a recorded (not deleted) slice is
    /// missing from the list. A Service never recorded is never stale.
    pub fn stale_slices<'a, I>(&self, service: &ObjectKey, listed: I) -> bool
    where
        I: IntoIterator<Item = &'a EndpointSlice>,
    {
        let services = self.lock();
        let Some(recorded) = services.get(service) else {
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
        self.record(slice, Expected::Generation(generation(slice)));
    }

    /// Records that this controller deleted `slice`.
    pub fn expect_deletion(&self, slice: &EndpointSlice) {
        self.record(slice, Expected::Deletion);
    }

    fn record(&self, slice: &EndpointSlice, expected: Expected) {
        self.lock()
            .entry(service_key(slice))
            .or_default()
            .insert(uid(slice).to_owned(), expected);
    }

    /// Forgets `slice` after an informer reported its deletion. Returns
    /// whether the deletion was expected — `false` only when the slice was
    /// tracked with a generation, meaning someone else deleted a slice this
    /// controller wrote.
    pub fn handle_deletion(&self, slice: &EndpointSlice) -> bool {
        let mut services = self.lock();
        let Some(slices) = services.get_mut(&service_key(slice)) else {
            return true;
        };
        !matches!(
            slices.remove(uid(slice)),
            Some(Expected::Generation(_) | Expected::Superseded)
        )
    }

    /// The Service `service` was re-created: every slice recorded for it
    /// becomes superseded — never stale, but its deletion by
    /// someone else still queues the Service (see
    /// [`handle_deletion`](Self::handle_deletion)).
    pub fn owner_replaced(&self, service: &ObjectKey) {
        if let Some(slices) = self.lock().get_mut(service) {
            for expected in slices.values_mut() {
                *expected = Expected::Superseded;
            }
        }
    }

    /// Forgets everything recorded for the Service `service` (called when the
    /// Service is gone).
    pub fn delete_service(&self, service: &ObjectKey) {
        self.lock().remove(service);
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
mod tests {
    //! Upstream's `endpointslice_tracker_test.go` cases, in our data.
    use super::*;
    use ecm_types::wellknown::LABEL_SERVICE_NAME;
    use std::collections::BTreeMap;

    fn slice(namespace: &str, service: &str, uid: &str, generation: i64) -> EndpointSlice {
        let mut slice = EndpointSlice::default();
        slice.metadata.name = Some(format!("{service}-abcde"));
        slice.metadata.namespace = Some(namespace.to_owned());
        slice.metadata.uid = Some(uid.to_owned());
        slice.metadata.generation = Some(generation);
        slice.metadata.labels = Some(BTreeMap::from([(LABEL_SERVICE_NAME.to_owned(), service.to_owned())]));
        slice
    }

    fn original() -> EndpointSlice {
        slice("ns1", "svc1", "original", 1)
    }

    fn svc1() -> ObjectKey {
        ObjectKey::new("ns1", "svc1")
    }

    #[test]
    fn update_then_has_and_should_sync() {
        type Case = (&'static str, EndpointSlice, bool, bool);
        let cases: [Case; 4] = [
            ("same slice", original(), true, false),
            ("other namespace", slice("ns2", "svc1", "diff-ns", 1), false, true),
            ("other service", slice("ns1", "svc2", "diff-svc", 1), false, true),
            ("newer generation", slice("ns1", "svc1", "original", 2), true, true),
        ];
        for (name, checked, has, should_sync) in cases {
            let tracker = EndpointSliceTracker::new();
            tracker.update(&original());
            assert_eq!(tracker.has(&checked), has, "{name}: has");
            assert_eq!(tracker.should_sync(&checked), should_sync, "{name}: should_sync");
            assert!(!tracker.should_sync(&original()), "{name}: recorded generation kept");
        }
    }

    #[test]
    fn an_older_generation_than_recorded_needs_no_sync() {
        let tracker = EndpointSliceTracker::new();
        tracker.update(&slice("ns1", "svc1", "original", 3));
        assert!(!tracker.should_sync(&slice("ns1", "svc1", "original", 2)));
    }

    #[test]
    fn stale_slices_table() {
        type Case = (&'static str, Option<Expected>, Vec<EndpointSlice>, bool);
        let cases: Vec<Case> = vec![
            ("service never recorded", None, vec![], false),
            (
                "matching slices",
                Some(Expected::Generation(1)),
                vec![original()],
                false,
            ),
            (
                "newer slice in tracker",
                Some(Expected::Generation(2)),
                vec![original()],
                true,
            ),
            (
                "newer slice listed",
                Some(Expected::Generation(1)),
                vec![slice("ns1", "svc1", "original", 2)],
                false,
            ),
            (
                "listed slice expected deleted",
                Some(Expected::Deletion),
                vec![original()],
                true,
            ),
            ("recorded slice not listed", Some(Expected::Generation(1)), vec![], true),
            ("deleted slice not listed", Some(Expected::Deletion), vec![], false),
        ];
        for (name, recorded, listed, stale) in cases {
            let tracker = EndpointSliceTracker::new();
            match recorded {
                Some(Expected::Generation(g)) => tracker.update(&slice("ns1", "svc1", "original", g)),
                Some(Expected::Deletion) => tracker.expect_deletion(&original()),
                None | Some(Expected::Superseded) => {}
            }
            assert_eq!(tracker.stale_slices(&svc1(), &listed), stale, "{name}");
        }
    }

    #[test]
    fn a_service_whose_slices_were_all_forgotten_is_still_tracked_and_not_stale() {
        let tracker = EndpointSliceTracker::new();
        tracker.expect_deletion(&original());
        assert!(tracker.handle_deletion(&original()));
        assert!(!tracker.stale_slices(&svc1(), []));
        assert!(tracker.should_sync(&original()), "forgotten slice is untracked");
    }

    #[test]
    fn expect_deletion_then_handle_deletion() {
        // (name, slice expected deleted, slice checked, has, should_sync, deletion expected)
        type Case = (&'static str, EndpointSlice, EndpointSlice, bool, bool, bool);
        let other_ns = slice("ns2", "svc1", "diff-ns", 1);
        let other_svc = slice("ns1", "svc2", "diff-svc", 1);
        let newer = slice("ns1", "svc1", "original", 2);
        let cases: [Case; 7] = [
            ("same slice", original(), original(), true, true, true),
            ("other namespace", other_ns.clone(), other_ns.clone(), true, true, false),
            (
                "other namespace, check original",
                other_ns,
                original(),
                true,
                false,
                false,
            ),
            ("other service", other_svc.clone(), other_svc.clone(), true, true, false),
            (
                "other service, check original",
                other_svc,
                original(),
                true,
                false,
                false,
            ),
            ("newer generation", newer.clone(), newer.clone(), true, true, true),
            ("newer generation, check original", newer, original(), true, true, true),
        ];
        for (name, deleted, checked, has, should_sync, expected) in cases {
            let tracker = EndpointSliceTracker::new();
            tracker.update(&original());
            tracker.expect_deletion(&deleted);
            assert_eq!(tracker.has(&checked), has, "{name}: has");
            assert_eq!(tracker.should_sync(&checked), should_sync, "{name}: should_sync");
            assert_eq!(
                tracker.handle_deletion(&original()),
                expected,
                "{name}: handle_deletion"
            );
            assert!(!tracker.has(&original()), "{name}: forgotten");
        }
    }

    #[test]
    fn deletion_of_an_untracked_slice_counts_as_expected() {
        let tracker = EndpointSliceTracker::new();
        assert!(tracker.handle_deletion(&original()));
        tracker.update(&slice("ns1", "svc1", "other", 1));
        assert!(tracker.handle_deletion(&original()));
    }

    #[test]
    fn delete_service_forgets_only_that_service() {
        type Case = (&'static str, ObjectKey, bool, bool);
        let cases: [Case; 3] = [
            ("same service", svc1(), false, true),
            ("other namespace", ObjectKey::new("ns2", "svc1"), true, false),
            ("other service", ObjectKey::new("ns1", "svc2"), true, false),
        ];
        for (name, deleted, has, should_sync) in cases {
            let tracker = EndpointSliceTracker::new();
            tracker.update(&original());
            tracker.delete_service(&deleted);
            assert_eq!(tracker.has(&original()), has, "{name}: has");
            assert_eq!(tracker.should_sync(&original()), should_sync, "{name}: should_sync");
        }
    }

    #[test]
    fn slices_without_service_label_share_the_empty_name() {
        let tracker = EndpointSliceTracker::new();
        let mut unlabelled = original();
        unlabelled.metadata.labels = None;
        tracker.update(&unlabelled);
        assert!(tracker.has(&unlabelled));
        assert!(!tracker.has(&original()));
        assert!(tracker.stale_slices(&ObjectKey::new("ns1", ""), []));
    }

    #[test]
    fn slices_of_a_replaced_owner_are_never_stale_but_their_deletion_is_repaired() {
        // Chaos seed 141: the re-created Service kept the old Service's
        // placeholder (a placeholder is reused whoever owns it, as
        // upstream); the garbage collector then deleted it, and only this
        // deletion event could bring the Service back to a placeholder.
        let tracker = EndpointSliceTracker::new();
        tracker.update(&original());
        tracker.expect_deletion(&slice("ns1", "svc1", "deleted", 1));
        tracker.owner_replaced(&svc1());
        assert!(!tracker.stale_slices(&svc1(), []), "not listed: not stale");
        assert!(!tracker.stale_slices(&svc1(), [&original()]), "listed: not stale");
        assert!(tracker.has(&original()));
        assert!(tracker.should_sync(&original()));
        assert!(!tracker.handle_deletion(&original()), "collected: sync the Service");
        tracker.update(&slice("ns1", "svc1", "new", 1));
        assert!(tracker.stale_slices(&svc1(), []), "the new owner's writes count");
    }
}
