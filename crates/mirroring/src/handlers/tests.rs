//! Which informer events queue which keys, and when.

use super::*;
use ecm_informer::Store;
use std::time::Duration;

use ecm_controller::StaleCacheGuard;
use ecm_controller::slices::{EndpointSliceTracker, SliceHandler};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::sync::MANAGER;
use crate::test_support::{endpoints, mirrored_slice, service, service_with_selector};
use ecm_controller::testing::{drain, queue};
use ecm_types::wellknown::{ANNOTATION_LEADER, LABEL_MANAGED_BY, LABEL_SERVICE_NAME, LABEL_SKIP_MIRROR};
use std::collections::BTreeMap;

fn deleted<S>(obj: S) -> Deleted<S> {
    Deleted {
        obj: Arc::new(obj),
        final_state_unknown: false,
    }
}

fn skip_mirror(name: &str) -> Endpoints {
    let mut ep = endpoints(name, vec![]);
    ep.metadata.labels = Some(BTreeMap::from([(LABEL_SKIP_MIRROR.to_owned(), "true".to_owned())]));
    ep
}

fn leader(name: &str) -> Endpoints {
    let mut ep = endpoints(name, vec![]);
    ep.metadata.annotations = Some(BTreeMap::from([(ANNOTATION_LEADER.to_owned(), String::new())]));
    ep
}

/// An Endpoints handler over empty Service and slice caches.
fn endpoints_handler(queue: &RateLimitingQueue<ObjectKey>) -> EndpointsHandler {
    let slices = Store::new();
    MANAGER.add_index(&slices);
    EndpointsHandler {
        queue: queue.clone(),
        services: Lister::new(Store::new()),
        slices: Lister::new(slices),
    }
}

#[tokio::test(start_paused = true)]
async fn endpoints_events_queue_mirrorable_endpoints_at_once() {
    let queue = queue();
    let handler = endpoints_handler(&queue);
    handler.on_add(&Arc::new(endpoints("foo", vec![])), true);
    handler.on_add(&Arc::new(skip_mirror("skipped")), true);
    handler.on_add(&Arc::new(leader("lock")), true);
    assert_eq!(queue.len(), 1, "queued without delay");
    assert_eq!(drain(&queue).await, ["ns/foo"]);

    handler.on_update(&Arc::new(endpoints("a", vec![])), &Arc::new(skip_mirror("a")));
    handler.on_update(&Arc::new(skip_mirror("b")), &Arc::new(endpoints("b", vec![])));
    handler.on_update(&Arc::new(skip_mirror("c")), &Arc::new(leader("c")));
    assert_eq!(drain(&queue).await, ["ns/a", "ns/b"], "old or new mirrorable");

    handler.on_delete(deleted(endpoints("gone", vec![])));
    handler.on_delete(deleted(skip_mirror("skipped")));
    assert_eq!(drain(&queue).await, ["ns/gone"]);
}

#[tokio::test(start_paused = true)]
async fn endpoints_of_a_selector_service_are_queued_only_with_something_to_clean_up() {
    let queue = queue();
    let handler = endpoints_handler(&queue);
    let services = handler.services.store();
    services.insert(Arc::new(service_with_selector("web", &[("app", "web")])));
    services.insert(Arc::new(service("plain")));
    let web = Arc::new(endpoints("web", vec![]));
    handler.on_add(&web, false);
    handler.on_update(&web, &web);
    assert!(drain(&queue).await.is_empty(), "the sync would find nothing to do");

    // Slices mirrored before the Service had its selector: the sync deletes them.
    let mirrored = mirrored_slice(&web, "web-1", "IPv4", vec![], vec![]);
    handler.slices.store().insert(Arc::new(mirrored));
    handler.on_update(&web, &web);
    assert_eq!(drain(&queue).await, ["ns/web"]);

    // Selector-less, or no Service cached: queued as upstream.
    let plain = Arc::new(endpoints("plain", vec![]));
    let orphan = Arc::new(endpoints("orphan", vec![]));
    handler.on_update(&plain, &plain);
    handler.on_add(&orphan, false);
    assert_eq!(drain(&queue).await, ["ns/orphan", "ns/plain"]);
}

#[tokio::test(start_paused = true)]
async fn service_events_queue_only_selectorless_services_and_selector_transitions() {
    let queue = queue();
    let handler = ServiceHandler { queue: queue.clone() };
    handler.on_add(&Arc::new(service("plain")), true);
    handler.on_add(&Arc::new(service_with_selector("empty", &[])), true);
    handler.on_add(&Arc::new(service_with_selector("selected", &[("app", "x")])), true);
    assert_eq!(drain(&queue).await, ["ns/empty", "ns/plain"]);

    let with = Arc::new(service_with_selector("t", &[("app", "x")]));
    let other = Arc::new(service_with_selector("t", &[("app", "y")]));
    let without = Arc::new(service("t"));
    handler.on_update(&with, &other);
    handler.on_update(&without, &without);
    assert!(
        drain(&queue).await.is_empty(),
        "selector contents and other changes are ignored"
    );
    handler.on_update(&with, &without);
    assert_eq!(drain(&queue).await, ["ns/t"]);
    handler.on_update(&without, &with);
    assert_eq!(drain(&queue).await, ["ns/t"]);

    handler.on_delete(deleted(service("plain")));
    handler.on_delete(deleted(service_with_selector("selected", &[("a", "b")])));
    assert_eq!(drain(&queue).await, ["ns/plain"]);
}

fn slice(name: &str, service: &str, manager: &str, generation: i64) -> Arc<EndpointSlice> {
    let mut slice = mirrored_slice(&endpoints(service, vec![]), name, "IPv4", vec![], vec![]);
    slice.metadata.generation = Some(generation);
    let labels = slice.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(LABEL_MANAGED_BY.to_owned(), manager.to_owned());
    if service.is_empty() {
        labels.remove(LABEL_SERVICE_NAME);
    }
    Arc::new(slice)
}

const OURS: &str = ecm_types::wellknown::MANAGED_BY_MIRRORING_CONTROLLER;

fn slice_handler(
    queue: &RateLimitingQueue<ObjectKey>,
    tracker: &Arc<EndpointSliceTracker>,
    batch: Duration,
) -> SliceHandler {
    SliceHandler {
        queue: queue.clone(),
        manager: MANAGER,
        guard: Arc::new(StaleCacheGuard::new(Arc::clone(tracker))),
        delay: batch,
        wake_from: None,
        changes: None,
    }
}

#[test]
fn the_slice_handler_manages_what_this_controller_writes() {
    let ep = endpoints("foo", vec![]);
    assert!(MANAGER.manages(&mirrored_slice(&ep, "foo-1", "IPv4", vec![], vec![])));
    assert!(!MANAGER.manages(&slice("s1", "foo", "someone-else", 1)));
}

#[tokio::test(start_paused = true)]
async fn slice_events_wait_for_the_batch_period() {
    let queue = queue();
    let tracker = Arc::new(EndpointSliceTracker::new());
    slice_handler(&queue, &tracker, Duration::ZERO).on_add(&slice("s1", "foo", OURS, 1), false);
    assert_eq!(queue.len(), 1, "no delay by default");
    assert_eq!(drain(&queue).await, ["ns/foo"]);

    slice_handler(&queue, &tracker, Duration::from_secs(5)).on_add(&slice("s2", "foo", OURS, 1), false);
    tokio::time::sleep(Duration::from_millis(4999)).await;
    assert!(queue.is_empty(), "not before the batch period");
    assert_eq!(drain(&queue).await, ["ns/foo"]);
}
