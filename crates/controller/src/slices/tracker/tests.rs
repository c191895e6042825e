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

/// A tracker whose requeue hook counts the owners it is handed.
fn counting() -> (Arc<EndpointSliceTracker>, Arc<Mutex<Vec<ObjectKey>>>) {
    let tracker = Arc::new(EndpointSliceTracker::new());
    let requeued = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requeued);
    tracker.on_requeue(move |owner| seen.lock().push(owner.clone()));
    (tracker, requeued)
}

#[test]
fn events_during_a_hold_are_judged_once_the_writes_are_recorded() {
    // (name, what the watch delivers during the writes, what the writes record, requeued)
    type Event = fn(&EndpointSliceTracker);
    type Case = (&'static str, Event, Event, bool);
    let cases: [Case; 7] = [
        (
            "our update, seen before its answer",
            |t| assert!(!t.should_sync(&slice("ns1", "svc1", "original", 2))),
            |t| t.update(&slice("ns1", "svc1", "original", 2)),
            false,
        ),
        (
            "our create, seen before its answer",
            |t| assert!(!t.should_sync(&slice("ns1", "svc1", "created", 1))),
            |t| t.update(&slice("ns1", "svc1", "created", 1)),
            false,
        ),
        (
            "our delete, seen before its answer",
            |t| assert!(t.handle_deletion(&original())),
            |t| t.expect_deletion(&original()),
            false,
        ),
        (
            "someone else's later update",
            |t| assert!(!t.should_sync(&slice("ns1", "svc1", "original", 3))),
            |t| t.update(&slice("ns1", "svc1", "original", 2)),
            true,
        ),
        (
            "someone else's slice",
            |t| assert!(!t.should_sync(&slice("ns1", "svc1", "theirs", 1))),
            |t| t.update(&slice("ns1", "svc1", "original", 2)),
            true,
        ),
        (
            "someone else deleted a slice we keep",
            |t| assert!(t.handle_deletion(&original())),
            |t| t.update(&slice("ns1", "svc1", "created", 1)),
            true,
        ),
        (
            "another Service's slice is judged at once",
            |t| assert!(t.should_sync(&slice("ns1", "svc2", "other", 1))),
            |t| t.update(&slice("ns1", "svc1", "original", 2)),
            false,
        ),
    ];
    for (name, during, recorded, requeued) in cases {
        let (tracker, seen) = counting();
        tracker.update(&original());
        let hold = tracker.hold(&svc1());
        during(&tracker);
        recorded(&tracker);
        assert!(seen.lock().is_empty(), "{name}: nothing judged during the hold");
        drop(hold);
        let expected: Vec<ObjectKey> = if requeued { vec![svc1()] } else { vec![] };
        assert_eq!(*seen.lock(), expected, "{name}");
        assert!(tracker.lock().held.is_empty(), "{name}: nothing left held");
    }
}

#[test]
fn a_deletion_judged_after_the_hold_forgets_the_slice() {
    let (tracker, _) = counting();
    tracker.update(&original());
    let hold = tracker.hold(&svc1());
    assert!(tracker.handle_deletion(&original()));
    assert!(tracker.has(&original()), "still recorded while held");
    tracker.expect_deletion(&original());
    drop(hold);
    assert!(!tracker.has(&original()), "forgotten once judged");
    assert!(!tracker.stale_slices(&svc1(), []));
}

#[test]
fn holds_nest_and_only_the_last_release_judges() {
    let (tracker, seen) = counting();
    tracker.update(&original());
    let outer = tracker.hold(&svc1());
    let inner = tracker.hold(&svc1());
    assert!(!tracker.should_sync(&slice("ns1", "svc1", "original", 5)));
    drop(inner);
    assert!(seen.lock().is_empty());
    assert!(!tracker.should_sync(&slice("ns1", "svc1", "original", 6)), "still held");
    drop(outer);
    assert_eq!(*seen.lock(), [svc1()], "one requeue for all held events");
    assert!(
        tracker.should_sync(&slice("ns1", "svc1", "original", 7)),
        "judged at once again"
    );
}

#[test]
fn without_a_requeue_hook_held_events_are_judged_and_dropped() {
    let tracker = EndpointSliceTracker::new();
    let hold = tracker.hold(&svc1());
    assert!(!tracker.should_sync(&original()));
    drop(hold);
    assert!(tracker.lock().held.is_empty());
    assert!(tracker.should_sync(&original()));
}
