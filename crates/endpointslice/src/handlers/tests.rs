//! Which informer events queue which keys, and when.

use super::*;
use ecm_controller::StaleCacheGuard;
use ecm_controller::slices::{EndpointSliceTracker, SliceHandler};
use ecm_informer::{Lister, ObjectKey, Store};

use crate::sync::MANAGER;
use ecm_controller::testing::{drain, queue, slice};
use ecm_types::fixtures::service;
use ecm_types::wellknown::MANAGED_BY_ENDPOINTSLICE_CONTROLLER;
use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The slice handler as the controller registers it.
fn slice_handler(queue: &RateLimitingQueue<ObjectKey>, tracker: &Arc<EndpointSliceTracker>) -> SliceHandler {
    SliceHandler {
        queue: queue.clone(),
        manager: MANAGER,
        guard: Arc::new(StaleCacheGuard::new(Arc::clone(tracker))),
        delay: slice_delay(Duration::ZERO),
        wake_from: Some(Lister::new(Store::new())),
        changes: None,
    }
}

const OURS: &str = MANAGED_BY_ENDPOINTSLICE_CONTROLLER;

#[test]
fn the_slice_handler_manages_what_this_controller_writes() {
    let svc = service("ns", "web").build();
    let ours = crate::slice::new_slice(&svc, ecm_types::IpFamily::V4, &[]);
    assert!(MANAGER.manages(&ours));
    assert!(!MANAGER.manages(&slice("s1", "web", "someone-else", 1)));
}

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
    let handler = NodeHandler {
        queue: queue.clone(),
        changes: None,
    };
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
async fn node_changes_that_change_endpoints_make_every_next_sync_full() {
    use ecm_controller::SyncScope;
    use ecm_informer::{Lister, Store};
    use ecm_types::fixtures::service;

    let changes = Arc::new(ChangeTracker::new());
    let handler = NodeHandler {
        queue: queue::<TopologyItem>(),
        changes: Some(Arc::clone(&changes)),
    };
    let svc = Arc::new(service("ns", "web").selector([("app", "web")]).build());
    let (key, pods) = (ObjectKey::of(svc.as_ref()), Lister::new(Store::new()));
    let base = node(true, Some("a"), "4");
    let cases = [
        ("readiness", node(false, Some("a"), "4"), false),
        ("cpu", node(true, Some("a"), "8"), false),
        ("zone", node(true, Some("b"), "4"), true),
        ("zone removed", node(true, None, "4"), true),
    ];
    for (what, new, full) in cases {
        changes.succeeded(&key, &svc, &SyncScope::Full { generation: 0 });
        let scope = changes.begin(&key, &svc, &pods);
        changes.succeeded(&key, &svc, &scope);
        handler.on_update(&base, &new);
        assert_eq!(changes.begin(&key, &svc, &pods).is_full(), full, "{what}");
        let scope = changes.begin(&key, &svc, &pods);
        changes.succeeded(&key, &svc, &scope);
    }
    handler.on_add(&base, false);
    assert!(changes.begin(&key, &svc, &pods).is_full(), "a node added");
}
