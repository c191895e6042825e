//! The reconciler against a fake API: exact writes, tracker bookkeeping,
//! events and error handling.

use super::*;
use crate::test_support::{
    Events, FakeApi, Verb, addr, addr_on, endpoints, mirrored_slice, port, slice_endpoint, slice_port, subset,
};
use ecm_controller::{EventRecorder, ObjectWriter, WriteError};
use ecm_types::endpoint_slice::endpoints as slice_endpoints;

fn reconciler(api: &Arc<FakeApi>, events: &Arc<Events>, max: usize) -> Reconciler {
    let writers = Writers {
        objects: Arc::clone(api) as Arc<dyn ObjectWriter<EndpointSlice>>,
        events: Arc::clone(events) as Arc<dyn EventRecorder>,
    };
    Reconciler::new(ReconcilerConfig::default().max_endpoints_per_subset(max), writers)
}

fn foo() -> Endpoints {
    endpoints(
        "foo",
        vec![subset(
            vec![addr_on("10.0.0.1", "pod-1", "node-1")],
            vec![],
            vec![port("http", 80, "TCP")],
        )],
    )
}

#[tokio::test]
async fn creates_and_tracks_the_created_slice() {
    let (api, events) = (FakeApi::new(), Events::new());
    let r = reconciler(&api, &events, 1000);
    r.reconcile(&foo(), []).await.unwrap();
    assert_eq!(api.summary(), [(Verb::Create, "foo-0".to_owned())]);
    let sent = api.calls()[0].sent.clone().unwrap();
    assert_eq!(sent.metadata.generate_name.as_deref(), Some("foo-"));
    assert_eq!(slice_endpoints(&sent).len(), 1);
    let mut stored = sent;
    stored.metadata.name = Some("foo-0".to_owned());
    stored.metadata.uid = Some("uid-foo-0".to_owned());
    stored.metadata.generation = Some(1);
    assert!(!r.tracker().should_sync(&stored), "our own write coming back");
    assert!(events.recorded().is_empty());
}

#[tokio::test]
async fn a_matching_slice_is_not_written_but_becomes_tracked() {
    let (api, events) = (FakeApi::new(), Events::new());
    let r = reconciler(&api, &events, 1000);
    let ep = foo();
    let mut e = slice_endpoint("10.0.0.1", true);
    e.hostname = Some("pod-1".to_owned());
    e.node_name = Some("node-1".to_owned());
    let existing = mirrored_slice(&ep, "foo-x7k2p", "IPv4", vec![slice_port("http", 80, "TCP")], vec![e]);
    assert!(!r.tracker().has(&existing));
    r.reconcile(&ep, [&existing]).await.unwrap();
    assert!(api.calls().is_empty());
    assert!(r.tracker().has(&existing));
    assert!(!r.tracker().should_sync(&existing));
}

#[tokio::test]
async fn writes_go_creates_then_updates_then_deletes() {
    let (api, events) = (FakeApi::new(), Events::new());
    let r = reconciler(&api, &events, 1000);
    let ep = endpoints(
        "foo",
        vec![
            subset(vec![addr("10.0.0.1")], vec![], vec![port("http", 80, "TCP")]),
            subset(vec![addr("10.0.1.1")], vec![], vec![port("x", 3000, "TCP")]),
        ],
    );
    let stale = mirrored_slice(&ep, "foo-a", "IPv4", vec![slice_port("http", 80, "TCP")], vec![]);
    let surplus = mirrored_slice(&ep, "foo-b", "IPv4", vec![slice_port("http", 80, "TCP")], vec![]);
    let v6 = mirrored_slice(&ep, "foo-c", "IPv6", vec![slice_port("y", 1, "TCP")], vec![]);
    r.reconcile(&ep, [&v6, &surplus, &stale]).await.unwrap();
    // The 3000 group is created... but recycles the surplus IPv4 slice;
    // the IPv6 slice of a port list no longer desired is deleted.
    let summary = api.summary();
    assert_eq!(
        summary,
        [
            (Verb::Update, "foo-a".to_owned()),
            (Verb::Update, "foo-b".to_owned()),
            (Verb::Delete, "foo-c".to_owned()),
        ]
    );
    assert!(
        !r.tracker().should_sync(&v6) || r.tracker().has(&v6),
        "deletion expected"
    );
    assert!(r.tracker().handle_deletion(&v6), "our own delete");
}

#[tokio::test]
async fn the_first_failure_stops_the_writes() {
    let (api, events) = (FakeApi::new(), Events::new());
    let r = reconciler(&api, &events, 1000);
    let ep = endpoints(
        "foo",
        vec![
            subset(vec![addr("10.0.0.1")], vec![], vec![port("http", 80, "TCP")]),
            subset(vec![addr("10.0.1.1")], vec![], vec![port("x", 3000, "TCP")]),
        ],
    );
    api.fail_next(Verb::Create, WriteError::Invalid("bad".into()));
    let error = r.reconcile(&ep, []).await.unwrap_err();
    assert_eq!(
        error,
        ReconcileError::Create {
            endpoints: ObjectKey::new("ns", "foo"),
            cause: WriteError::Invalid("bad".into())
        }
    );
    assert!(api.calls().is_empty(), "second create not attempted");
}

#[tokio::test]
async fn a_terminating_namespace_drops_the_writes_without_error() {
    let (api, events) = (FakeApi::new(), Events::new());
    let r = reconciler(&api, &events, 1000);
    api.fail_next(Verb::Create, WriteError::NamespaceTerminating("ns".into()));
    r.reconcile(&foo(), []).await.unwrap();
    assert!(api.calls().is_empty());
}

#[tokio::test]
async fn update_and_delete_failures_are_reported() {
    let (api, events) = (FakeApi::new(), Events::new());
    let r = reconciler(&api, &events, 1000);
    let ep = foo();
    let old = mirrored_slice(&ep, "foo-old", "IPv4", vec![slice_port("http", 80, "TCP")], vec![]);
    api.fail_next(Verb::Update, WriteError::Conflict("x".into()));
    assert!(matches!(
        r.reconcile(&ep, [&old]).await,
        Err(ReconcileError::Update { ref name, .. }) if name == "foo-old"
    ));
    let gone = endpoints("foo", vec![]);
    api.fail_next(Verb::Delete, WriteError::Transport("down".into()));
    assert!(matches!(
        r.reconcile(&gone, [&old]).await,
        Err(ReconcileError::Delete { .. })
    ));
    api.fail_next(Verb::Delete, WriteError::NotFound("gone".into()));
    r.reconcile(&gone, [&old]).await.unwrap();
}

#[tokio::test]
async fn skipped_addresses_are_reported_on_every_sync() {
    let (api, events) = (FakeApi::new(), Events::new());
    let r = reconciler(&api, &events, 2);
    let ep = endpoints(
        "foo",
        vec![subset(
            vec![addr("10.0.0.1"), addr("0-bogus"), addr("10.0.0.2"), addr("10.0.0.3")],
            vec![],
            vec![port("http", 80, "TCP")],
        )],
    );
    r.reconcile(&ep, []).await.unwrap();
    r.reconcile(&ep, []).await.unwrap();
    let recorded = events.recorded();
    assert_eq!(recorded.len(), 4);
    assert_eq!(recorded[0].0, "InvalidIPAddress");
    assert_eq!(recorded[1].0, "TooManyAddressesToMirror");
    assert!(recorded[1].1.contains("A max of 2 addresses"));
    assert!(recorded[1].1.ends_with("2 addresses were skipped"), "{}", recorded[1].1);
}

#[tokio::test]
async fn deleting_mirrored_slices_goes_on_after_failures() {
    let (api, events) = (FakeApi::new(), Events::new());
    let r = reconciler(&api, &events, 1000);
    let ep = foo();
    let a = mirrored_slice(&ep, "foo-a", "IPv4", vec![], vec![]);
    let b = mirrored_slice(&ep, "foo-b", "IPv4", vec![], vec![]);
    api.fail_next(Verb::Delete, WriteError::Transport("down".into()));
    let error = r
        .delete_mirrored(&ObjectKey::new("ns", "foo"), &[&a, &b])
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        ReconcileError::DeleteMirrored {
            failed: 1,
            total: 2,
            ..
        }
    ));
    assert_eq!(api.summary(), [(Verb::Delete, "foo-b".to_owned())]);
    assert!(!r.tracker().has(&b), "not registered with the tracker");
}
