//! Upstream's error handling in `finalize` and `Reconcile`: which writes
//! still happen after a failed one, what counts as success, and what the
//! tracker records.

// Test code: panicking on a broken expectation is the point, and metric
// values are compared exactly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::float_cmp)]

mod support;

use ecm_controller::WriteError;
use ecm_endpointslice::ReconcileError;
use ecm_endpointslice::new_slice;
use ecm_endpointslice::pod_to_endpoint;
use ecm_informer::ObjectKey;
use ecm_types::endpoint_slice::set_endpoints;
use ecm_types::fixtures::{pod, service};
use ecm_types::{IpFamily, PodProjection};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{EndpointPort, EndpointSlice};
use support::{Harness, Verb, node};

fn svc() -> Service {
    service("test", "foo")
        .selector([("foo", "bar")])
        .port("foo", 80, 80)
        .build()
}

fn ports() -> Vec<EndpointPort> {
    vec![EndpointPort {
        name: Some("foo".to_owned()),
        port: Some(80),
        protocol: Some("TCP".to_owned()),
        app_protocol: None,
    }]
}

fn p(n: usize, ready: bool) -> PodProjection {
    pod("test", &format!("pod{n}"))
        .labels([("foo", "bar")])
        .ip(&format!("10.0.0.{n}"))
        .node("node-1")
        .ready(ready)
        .projection()
}

fn slice(name: &str, pods: &[PodProjection]) -> EndpointSlice {
    let mut slice = new_slice(&svc(), IpFamily::V4, &ports());
    slice.metadata.generate_name = None;
    slice.metadata.name = Some(name.to_owned());
    let node1 = node("node-1", None, "1");
    set_endpoints(
        &mut slice,
        pods.iter()
            .map(|p| pod_to_endpoint(p, Some(&node1), &svc(), IpFamily::V4))
            .collect(),
    );
    slice
}

/// foo-a must be updated (pod0 turns not ready), foo-b deleted (its pod is
/// gone), and two new pods need a new slice (max 2).
fn mixed() -> (Harness, Vec<PodProjection>) {
    let h = Harness::new(2, &[node("node-1", None, "1")]);
    h.api
        .seed(&[slice("foo-a", &[p(0, true), p(1, true)]), slice("foo-b", &[p(9, true)])]);
    (h, vec![p(0, false), p(1, true), p(2, true), p(3, true)])
}

#[test]
fn writes_go_creates_then_updates_then_deletes() {
    let (h, pods) = mixed();
    h.reconcile(&svc(), &pods).unwrap();
    // The new slice of two takes foo-b's name: create→update recycling.
    assert_eq!(h.api.verbs(), [Verb::Update, Verb::Update]);

    let h = Harness::new(2, &[node("node-1", None, "1")]);
    let mut unowned = slice("foo-c", &[p(8, true)]);
    unowned.metadata.owner_references = None;
    h.api.seed(&[slice("foo-a", &[p(0, true), p(1, true)]), unowned]);
    h.reconcile(&svc(), &mixed().1).unwrap();
    assert_eq!(
        h.api.verbs(),
        [Verb::Create, Verb::Update, Verb::Delete],
        "an unowned slice is deleted, never recycled"
    );
}

#[test]
fn a_failed_create_stops_the_writes_of_its_address_type() {
    let h = Harness::new(2, &[node("node-1", None, "1")]);
    h.api.seed(&[slice("foo-a", &[p(0, true), p(1, true)])]);
    h.api.fail_next(
        Verb::Create,
        WriteError::Api {
            code: 500,
            reason: "InternalError".to_owned(),
            message: "boom".to_owned(),
        },
    );
    let pods = [p(0, false), p(1, true), p(2, true)];
    let errors = h.reconcile(&svc(), &pods).unwrap_err();
    assert_eq!(h.api.verbs(), [Verb::Create], "no update after the failed create");
    assert_eq!(
        errors.to_string(),
        "failed to create EndpointSlice for Service test/foo: InternalError (500): boom"
    );
    assert!(matches!(errors.errors(), [ReconcileError::Create { .. }]));
}

#[test]
fn a_terminating_namespace_ends_the_sync_successfully() {
    let h = Harness::new(2, &[node("node-1", None, "1")]);
    h.api.seed(&[slice("foo-a", &[p(0, true), p(1, true)])]);
    h.api
        .fail_next(Verb::Create, WriteError::NamespaceTerminating("test".to_owned()));
    let pods = [p(0, false), p(1, true), p(2, true)];
    h.reconcile(&svc(), &pods).unwrap();
    assert_eq!(h.api.verbs(), [Verb::Create], "the update is dropped too");
}

#[test]
fn a_failed_update_stops_the_deletes() {
    let h = Harness::new(100, &[node("node-1", None, "1")]);
    h.api
        .seed(&[slice("foo-a", &[p(0, true), p(1, true)]), slice("foo-b", &[p(9, true)])]);
    h.api.fail_next(Verb::Update, WriteError::Conflict("foo-a".to_owned()));
    let errors = h.reconcile(&svc(), &[p(0, false), p(1, true)]).unwrap_err();
    assert_eq!(h.api.verbs(), [Verb::Update]);
    assert_eq!(
        errors.to_string(),
        "failed to update foo-a EndpointSlice for Service test/foo: conflict: foo-a"
    );
}

#[test]
fn a_stale_resource_version_is_a_conflict() {
    let h = Harness::new(100, &[node("node-1", None, "1")]);
    let stored = h.api.seed(&[slice("foo-a", &[p(0, true)])]);
    let mut outdated = stored[0].clone();
    outdated.metadata.resource_version = Some("0".to_owned());
    let errors = h.reconcile_with(&svc(), &[p(0, false)], &[outdated]).unwrap_err();
    assert!(matches!(errors.errors(), [ReconcileError::Update { .. }]), "{errors}");
}

#[test]
fn deleting_a_slice_already_gone_is_not_an_error_and_not_expected() {
    let h = Harness::new(100, &[node("node-1", None, "1")]);
    let a = slice("foo-a", &[p(0, true)]);
    let gone = {
        let mut s = slice("foo-gone", &[p(9, true)]);
        s.metadata.uid = Some("uid-foo-gone".to_owned());
        s
    };
    h.api.seed(std::slice::from_ref(&a));
    let listed = [h.api.slices()[0].clone(), gone.clone()];
    h.reconcile_with(&svc(), &[p(0, true)], &listed).unwrap();
    assert_eq!(h.api.verbs(), [Verb::Delete]);
    assert!(!h.reconciler.tracker().has(&gone), "a 404 records no expected deletion");
}

#[test]
fn a_failed_delete_stops_the_remaining_deletes() {
    let h = Harness::new(100, &[node("node-1", None, "1")]);
    h.api.seed(&[
        slice("foo-a", &[p(0, true)]),
        slice("foo-b", &[p(8, true)]),
        slice("foo-c", &[p(9, true)]),
    ]);
    h.api.fail_next(
        Verb::Delete,
        WriteError::Api {
            code: 429,
            reason: "TooManyRequests".to_owned(),
            message: "slow down".to_owned(),
        },
    );
    let errors = h.reconcile(&svc(), &[p(0, true)]).unwrap_err();
    assert_eq!(h.api.verbs(), [Verb::Delete]);
    assert_eq!(
        errors.to_string(),
        "failed to delete foo-b EndpointSlice for Service test/foo: TooManyRequests (429): slow down"
    );
}

#[test]
fn other_address_types_and_unsupported_deletes_go_on_after_a_failure() {
    let dual = service("test", "foo")
        .selector([("foo", "bar")])
        .ip_families(&["IPv4", "IPv6"])
        .port("foo", 80, 80)
        .build();
    let h = Harness::new(100, &[node("node-1", None, "1")]);
    let mut legacy = slice("foo-ip", &[]);
    legacy.address_type = "IP".to_owned();
    let mut other_legacy = slice("foo-ip2", &[]);
    other_legacy.address_type = "IP".to_owned();
    h.api.seed(&[legacy, other_legacy]);
    h.api.fail_next(Verb::Create, WriteError::Transport("reset".to_owned()));
    h.api.fail_next(
        Verb::Delete,
        WriteError::Api {
            code: 500,
            reason: "InternalError".to_owned(),
            message: "x".to_owned(),
        },
    );
    let pods = [pod("test", "pod0")
        .ips(&["10.0.0.1", "fd00::1"])
        .node("node-1")
        .projection()];
    let errors = h.reconcile(&dual, &pods).unwrap_err();
    assert_eq!(
        h.api.verbs(),
        [Verb::Create, Verb::Create, Verb::Delete, Verb::Delete],
        "IPv6 is still written, and every legacy slice is tried"
    );
    assert_eq!(
        errors.to_string(),
        "[failed to create EndpointSlice for Service test/foo: request failed: reset, \
         error deleting foo-ip EndpointSlice for Service test/foo: InternalError (500): x]"
    );
    assert_eq!(
        h.api.slices().len(),
        2,
        "the IPv6 slice and the legacy slice that failed"
    );
}

#[test]
fn writes_are_recorded_in_the_tracker_with_what_the_api_returned() {
    let (h, pods) = mixed();
    h.reconcile(&svc(), &pods).unwrap();
    let tracker = h.reconciler.tracker();
    for stored in h.api.slices() {
        assert_eq!(stored.metadata.generation, Some(2));
        assert!(!tracker.should_sync(&stored), "{:?}", stored.metadata.name);
    }
    assert!(!tracker.stale_slices(&ObjectKey::new("test", "foo"), &h.api.slices()));
}
