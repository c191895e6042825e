//! Which slice events queue which owners, and when.

use std::time::Duration;

use ecm_informer::Store;

use super::*;
use crate::testing::{drain, queue, slice};

const OURS: &str = "our-controller";

/// A handler for the slices managed by [`OURS`], queueing after 1 s, with
/// wake-ups from an empty cache.
fn slice_handler(queue: &RateLimitingQueue<ObjectKey>, tracker: &Arc<EndpointSliceTracker>) -> SliceHandler {
    SliceHandler {
        queue: queue.clone(),
        manager: SliceManager::new(OURS, "test/owner").skipping_terminating(),
        guard: Arc::new(StaleCacheGuard::new(Arc::clone(tracker))),
        delay: Duration::from_secs(1),
        wake_from: Some(Lister::new(Store::new())),
        changes: None,
    }
}

#[tokio::test(start_paused = true)]
async fn slice_adds_and_updates_the_tracker_expects_queue_nothing() {
    let queue = queue();
    let tracker = Arc::new(EndpointSliceTracker::new());
    let handler = slice_handler(&queue, &tracker);
    let ours = slice("s1", "web", OURS, 2);
    tracker.update(&ours);
    handler.on_add(&ours, false);
    handler.on_update(&ours, &ours);
    assert!(drain(&queue).await.is_empty(), "our own write coming back");
    let newer = slice("s1", "web", OURS, 3);
    handler.on_update(&ours, &newer);
    assert_eq!(drain(&queue).await, ["ns/web"], "someone else changed it");
}

#[tokio::test(start_paused = true)]
async fn our_writes_seen_before_their_answers_queue_nothing_but_others_changes_do() {
    let queue = queue();
    let tracker = Arc::new(EndpointSliceTracker::new());
    let handler = slice_handler(&queue, &tracker);
    handler.requeue_held_events();
    let owner = ObjectKey::new("ns", "web");
    let ours = slice("s1", "web", OURS, 2);
    tracker.update(&ours);

    // The update's event arrives before the API server's answer is recorded.
    let hold = tracker.hold(&owner);
    let written = slice("s1", "web", OURS, 3);
    handler.on_update(&ours, &written);
    tracker.update(&written);
    drop(hold);
    assert!(drain(&queue).await.is_empty(), "our own write, early");

    // Someone else's change lands in the middle of our writes.
    let hold = tracker.hold(&owner);
    handler.on_update(&written, &slice("s1", "web", OURS, 5));
    tracker.update(&slice("s1", "web", OURS, 4));
    assert!(drain(&queue).await.is_empty(), "held while the writes run");
    drop(hold);
    assert_eq!(drain(&queue).await, ["ns/web"], "judged after them");
}

#[tokio::test(start_paused = true)]
async fn slices_of_other_managers_are_ignored_unless_managed_by_changes() {
    let queue = queue();
    let tracker = Arc::new(EndpointSliceTracker::new());
    let handler = slice_handler(&queue, &tracker);
    let theirs = slice("s1", "web", "someone-else", 1);
    handler.on_add(&theirs, false);
    handler.on_update(&theirs, &slice("s1", "web", "someone-else", 2));
    assert!(drain(&queue).await.is_empty());
    handler.on_update(&theirs, &slice("s1", "web", OURS, 2));
    assert_eq!(drain(&queue).await, ["ns/web"], "taken over");
    handler.on_update(&slice("s1", "web", OURS, 2), &theirs);
    assert_eq!(drain(&queue).await, ["ns/web"], "given away");
}

#[tokio::test(start_paused = true)]
async fn a_slice_moved_to_another_owner_queues_both_whoever_manages_it() {
    let queue = queue();
    let tracker = Arc::new(EndpointSliceTracker::new());
    let handler = slice_handler(&queue, &tracker);
    handler.on_update(&slice("s1", "web", "x", 1), &slice("s1", "api", "x", 1));
    assert_eq!(drain(&queue).await, ["ns/api", "ns/web"]);
}

#[tokio::test(start_paused = true)]
async fn a_slice_without_service_name_is_ignored() {
    let queue = queue();
    let tracker = Arc::new(EndpointSliceTracker::new());
    slice_handler(&queue, &tracker).on_add(&slice("s1", "", OURS, 1), false);
    assert!(drain(&queue).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn only_unexpected_deletes_of_tracked_slices_queue_the_owner() {
    let queue = queue();
    let tracker = Arc::new(EndpointSliceTracker::new());
    let handler = slice_handler(&queue, &tracker);
    let deleted = |s: &Arc<EndpointSlice>| Deleted {
        obj: Arc::clone(s),
        final_state_unknown: false,
    };

    let never_written = slice("s0", "web", OURS, 1);
    handler.on_delete(deleted(&never_written));
    assert!(
        drain(&queue).await.is_empty(),
        "untracked slices are ignored (upstream quirk)"
    );

    let expected = slice("s1", "web", OURS, 1);
    tracker.update(&expected);
    tracker.expect_deletion(&expected);
    handler.on_delete(deleted(&expected));
    assert!(drain(&queue).await.is_empty(), "our own delete");

    let unexpected = slice("s2", "web", OURS, 1);
    tracker.update(&unexpected);
    handler.on_delete(deleted(&unexpected));
    assert_eq!(drain(&queue).await, ["ns/web"], "deleted by someone else");
    assert!(!tracker.has(&unexpected), "the tracker forgot it");
}

#[tokio::test(start_paused = true)]
async fn an_owner_waiting_for_the_cache_is_queued_at_once_when_it_catches_up() {
    let queue = queue();
    let tracker = Arc::new(EndpointSliceTracker::new());
    let store = Store::new();
    let mut handler = slice_handler(&queue, &tracker);
    handler.wake_from = Some(Lister::new(store.clone()));
    let key = ObjectKey::new("ns", "web");

    // The controller wrote generation 2 of s1; the cache still has 1.
    let old = slice("s1", "web", OURS, 1);
    store.insert(Arc::clone(&old));
    tracker.update(&slice("s1", "web", OURS, 2));
    assert!(handler.guard.is_behind(&key, &[Arc::clone(&old)]));

    // Another slice of the Service changes: the cache is still behind.
    let other = slice("s0", "web", OURS, 1);
    store.insert(Arc::clone(&other));
    handler.on_add(&other, false);
    assert!(
        queue.is_empty(),
        "s0 is untracked, and s1 is still stale: no immediate add"
    );
    assert_eq!(drain(&queue).await, ["ns/web"], "s0 alone queues after the usual delay");

    // Our own write of s1 arrives: the cache has caught up.
    let new = slice("s1", "web", OURS, 2);
    store.insert(Arc::clone(&new));
    handler.on_update(&old, &new);
    assert_eq!(queue.len(), 1, "queued now, without waiting for the back-off");
    let got = queue.get().await.unwrap();
    queue.done(&got);
    assert_eq!(got, key);

    // Once woken, the Service is forgotten: later events queue nothing more.
    handler.on_update(&new, &new);
    assert!(drain(&queue).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn owners_not_waiting_are_not_woken() {
    let queue = queue();
    let tracker = Arc::new(EndpointSliceTracker::new());
    let handler = slice_handler(&queue, &tracker);
    let ours = slice("s1", "web", OURS, 1);
    tracker.update(&ours);
    handler.on_update(&ours, &ours);
    assert!(drain(&queue).await.is_empty());
}
