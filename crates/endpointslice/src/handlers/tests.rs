//! Which informer events queue which keys, and when.

use super::*;
use ecm_controller::slices::{EndpointSliceTracker, SliceHandler};
use ecm_controller::{StaleCacheGuard, own_key_handler, pod_handler};
use ecm_informer::{Lister, ObjectKey, Store};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::sync::MANAGER;
use ecm_types::fixtures::{pod, service};
use ecm_types::wellknown::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME, MANAGED_BY_ENDPOINTSLICE_CONTROLLER};
use ecm_workqueue::{QueueConfig, default_controller_rate_limiter};
use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn queue<K: Clone + Eq + std::hash::Hash + Send + Sync + 'static>() -> RateLimitingQueue<K> {
    RateLimitingQueue::new(QueueConfig::default(), default_controller_rate_limiter())
}

/// Takes every queued key (delayed ones included, on the paused clock).
async fn drain(queue: &RateLimitingQueue<ObjectKey>) -> Vec<String> {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let mut keys = Vec::new();
    while !queue.is_empty() {
        let key = queue.get().await.unwrap();
        queue.done(&key);
        keys.push(key.to_string());
    }
    keys.sort();
    keys
}

fn slice(name: &str, service: &str, managed_by: &str, generation: i64) -> Arc<EndpointSlice> {
    let mut labels = std::collections::BTreeMap::new();
    if !service.is_empty() {
        labels.insert(LABEL_SERVICE_NAME.to_owned(), service.to_owned());
    }
    labels.insert(LABEL_MANAGED_BY.to_owned(), managed_by.to_owned());
    Arc::new(EndpointSlice {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("ns".to_owned()),
            uid: Some(format!("uid-{name}")),
            generation: Some(generation),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".to_owned(),
        ..EndpointSlice::default()
    })
}

/// The slice handler as the controller registers it.
fn slice_handler(queue: &RateLimitingQueue<ObjectKey>, tracker: &Arc<EndpointSliceTracker>) -> SliceHandler {
    SliceHandler {
        queue: queue.clone(),
        manager: MANAGER,
        guard: Arc::new(StaleCacheGuard::new(Arc::clone(tracker))),
        delay: slice_delay(Duration::ZERO),
        wake_from: Some(Lister::new(Store::new())),
    }
}

const OURS: &str = MANAGED_BY_ENDPOINTSLICE_CONTROLLER;

#[tokio::test(start_paused = true)]
async fn slice_events_wait_at_least_one_second() {
    assert_eq!(slice_delay(Duration::ZERO), Duration::from_secs(1));
    assert_eq!(slice_delay(Duration::from_secs(5)), Duration::from_secs(5));
    let queue = queue();
    let tracker = Arc::new(EndpointSliceTracker::new());
    slice_handler(&queue, &tracker).on_add(&slice("s1", "web", OURS, 1), false);
    tokio::time::sleep(Duration::from_millis(999)).await;
    assert!(queue.is_empty(), "not before 1 s");
    assert_eq!(drain(&queue).await, ["ns/web"]);
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
async fn a_slice_moved_to_another_service_queues_both() {
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
async fn only_unexpected_deletes_of_tracked_slices_queue_the_service() {
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
async fn pod_events_queue_services_after_the_batch_period() {
    let queue = queue();
    let store = Store::new();
    store.insert(Arc::new(service("ns", "a").selector([("app", "a")]).build()));
    store.insert(Arc::new(service("ns", "b").selector([("app", "b")]).build()));
    let handler = pod_handler(queue.clone(), Lister::new(store), Duration::from_secs(2));
    handler.on_add(&Arc::new(pod("ns", "p").labels([("app", "a")]).projection()), false);
    tokio::time::sleep(Duration::from_millis(1999)).await;
    assert!(queue.is_empty());
    assert_eq!(drain(&queue).await, ["ns/a"]);
}

#[tokio::test(start_paused = true)]
async fn service_events_queue_now() {
    let queue = queue();
    let handler = own_key_handler::<Service>(queue.clone());
    let svc = Arc::new(service("ns", "web").build());
    handler.on_add(&svc, true);
    assert_eq!(queue.len(), 1);
    handler.on_delete(Deleted {
        obj: svc,
        final_state_unknown: true,
    });
    assert_eq!(drain(&queue).await, ["ns/web"]);
}

fn node(ready: bool, zone: Option<&str>, cpu: &str) -> Arc<Node> {
    Arc::new(Node {
        metadata: ObjectMeta {
            name: Some("n1".into()),
            labels: zone.map(|z| [(LABEL_TOPOLOGY_ZONE.to_owned(), z.to_owned())].into()),
            ..ObjectMeta::default()
        },
        spec: None,
        status: Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..NodeCondition::default()
            }]),
            allocatable: Some(
                [(
                    "cpu".to_owned(),
                    k8s_openapi::apimachinery::pkg::api::resource::Quantity(cpu.into()),
                )]
                .into(),
            ),
            ..NodeStatus::default()
        }),
    })
}

#[tokio::test(start_paused = true)]
async fn node_changes_that_matter_to_topology_queue_the_topology_item() {
    let queue = queue::<TopologyItem>();
    let handler = NodeHandler { queue: queue.clone() };
    let base = node(true, Some("a"), "4");
    let cases = [
        ("readiness", node(false, Some("a"), "4"), true),
        ("zone", node(true, Some("b"), "4"), true),
        ("zone removed", node(true, None, "4"), true),
        ("cpu only (upstream quirk)", node(true, Some("a"), "8"), false),
    ];
    for (what, new, queues) in cases {
        handler.on_update(&base, &new);
        assert_eq!(queue.len() == 1, queues, "{what}");
        if queues {
            queue.get().await.unwrap();
            queue.done(&());
        }
    }
    handler.on_add(&base, false);
    assert_eq!(queue.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_service_waiting_for_the_cache_is_queued_at_once_when_it_catches_up() {
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
async fn services_not_waiting_are_not_woken() {
    let queue = queue();
    let tracker = Arc::new(EndpointSliceTracker::new());
    let handler = slice_handler(&queue, &tracker);
    let ours = slice("s1", "web", OURS, 1);
    tracker.update(&ours);
    handler.on_update(&ours, &ours);
    assert!(drain(&queue).await.is_empty());
}
