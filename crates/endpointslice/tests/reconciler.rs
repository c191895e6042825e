//! Upstream's reconciler test table (`staging/src/k8s.io/endpointslice/reconciler_test.go`)
//! re-expressed: a `Reconciler` writing through a `MockObjectWriter` that
//! answers like the API server, with the exact writes, the resulting slices,
//! the tracker and the metrics asserted.

// Test code: panicking on a broken expectation is the point, and metric
// values are compared exactly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::float_cmp)]

mod support;

use std::collections::BTreeMap;

use ecm_endpointslice::new_slice;
use ecm_endpointslice::pod_to_endpoint;
use ecm_informer::ObjectKey;
use ecm_types::endpoint_slice::{endpoints, set_endpoints};
use ecm_types::fixtures::{at, pod, service};
use ecm_types::wellknown::{
    ANNOTATION_LAST_CHANGE_TRIGGER_TIME, LABEL_HEADLESS, LABEL_MANAGED_BY, LABEL_SERVICE_NAME,
    MANAGED_BY_ENDPOINTSLICE_CONTROLLER,
};
use ecm_types::{IpFamily, PodProjection};
use k8s_openapi::api::core::v1::{Node, ObjectReference, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use support::{Expected, Harness, Verb, block_on, capture, node, sizes};

/// Upstream's `newServiceAndEndpointMeta("foo", "test")`: port `foo`
/// 80→80/TCP, selector foo=bar, IPv4.
fn svc() -> Service {
    service("test", "foo")
        .selector([("foo", "bar")])
        .port("foo", 80, 80)
        .build()
}

fn foo_ports() -> Vec<EndpointPort> {
    vec![EndpointPort {
        name: Some("foo".to_owned()),
        port: Some(80),
        protocol: Some("TCP".to_owned()),
        app_protocol: None,
    }]
}

/// The node every pod runs on (no zone).
fn node1() -> Node {
    node("node-1", None, "1")
}

/// Upstream's `newPod(n, "test", ready, 1, false)`.
fn new_pod(n: usize, ready: bool) -> PodProjection {
    pod("test", &format!("pod{n}"))
        .labels([("foo", "bar")])
        .ip(&format!("10.0.{}.{}", n / 256, n % 256))
        .node("node-1")
        .ready(ready)
        .projection()
}

/// `n` pods, every third not ready.
fn pods(range: std::ops::Range<usize>) -> Vec<PodProjection> {
    range.map(|i| new_pod(i, i % 3 != 0)).collect()
}

/// The endpoint the reconciler writes for `pod` (on a zone-less node).
fn endpoint_of(svc: &Service, pod: &PodProjection) -> Endpoint {
    pod_to_endpoint(pod, Some(&node1()), svc, IpFamily::V4)
}

/// Upstream's `newEmptyEndpointSlice(n, ...)` holding the endpoints of
/// `pods`: owned by the Service, named `foo-<n>`, with the Service's ports.
fn owned_slice(svc: &Service, n: usize, pods: &[&PodProjection]) -> EndpointSlice {
    let mut slice = new_slice(svc, IpFamily::V4, &foo_ports());
    slice.metadata.generate_name = None;
    slice.metadata.name = Some(format!("foo-{n}"));
    set_endpoints(&mut slice, pods.iter().map(|p| endpoint_of(svc, p)).collect());
    slice
}

fn generation_is_tracked(h: &Harness, slice: &EndpointSlice, generation: i64) {
    let tracker = h.reconciler.tracker();
    assert!(tracker.has(slice), "{:?} tracked", slice.metadata.name);
    let mut at_generation = slice.clone();
    at_generation.metadata.generation = Some(generation);
    assert!(!tracker.should_sync(&at_generation), "generation {generation} recorded");
    at_generation.metadata.generation = Some(generation + 1);
    assert!(
        tracker.should_sync(&at_generation),
        "generation {generation} recorded, not more"
    );
}

#[test]
fn no_pods_creates_one_placeholder_slice() {
    let h = Harness::new(100, &[node1()]);
    let (result, metrics) = capture(|| h.reconcile(&svc(), &[]));
    result.unwrap();
    assert_eq!(h.api.verbs(), [Verb::Create]);
    let slices = h.api.slices();
    assert_eq!(slices.len(), 1);
    let slice = &slices[0];
    assert!(slice.metadata.name.as_deref().unwrap().starts_with("foo-"));
    assert_eq!(
        slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_SERVICE_NAME))
            .map(String::as_str),
        Some("foo")
    );
    assert_eq!(slice.ports, Some(Vec::new()));
    assert!(endpoints(slice).is_empty());
    generation_is_tracked(&h, slice, 1);
    assert_eq!(
        metrics.summary(),
        Expected {
            desired_slices: 1.0,
            actual_slices: 1.0,
            created: 1,
            changed_per_sync: 1.0,
            ..Expected::default()
        }
    );
}

#[test]
fn one_pod_gives_one_slice_per_address_type() {
    let pod1 = pod("test", "pod1")
        .labels([("foo", "bar")])
        .ips(&["1.2.3.4", "1234::5678:0000:0000:9abc:def0"])
        .hostname("example-hostname")
        .node("node-1")
        .ready(true)
        .projection();
    let zoned = node("node-1", Some("us-central1-a"), "1");
    let base = || service("test", "foo").selector([("foo", "bar")]).port("foo", 80, 80);
    let managed = |extra: &[(&str, &str)]| -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            (LABEL_SERVICE_NAME.to_owned(), "foo".to_owned()),
            (
                LABEL_MANAGED_BY.to_owned(),
                MANAGED_BY_ENDPOINTSLICE_CONTROLLER.to_owned(),
            ),
        ]);
        labels.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        labels
    };
    let cases: Vec<(&str, Service, Vec<(&str, &str)>, BTreeMap<String, String>)> = vec![
        (
            "no families, IPv4 cluster IP",
            base().ip_families(&[]).cluster_ip("10.0.0.10").build(),
            vec![("IPv4", "1.2.3.4")],
            managed(&[]),
        ),
        (
            "ipv4 without cluster IP",
            base().cluster_ip("").build(),
            vec![("IPv4", "1.2.3.4")],
            managed(&[(LABEL_HEADLESS, "")]),
        ),
        (
            "ipv4 with cluster IP",
            base().cluster_ip("1.1.1.1").build(),
            vec![("IPv4", "1.2.3.4")],
            managed(&[]),
        ),
        (
            "ipv4 with labels",
            base().cluster_ip("").labels([("foo", "bar")]).build(),
            vec![("IPv4", "1.2.3.4")],
            managed(&[(LABEL_HEADLESS, ""), ("foo", "bar")]),
        ),
        (
            "ipv4 with reserved labels",
            base()
                .cluster_ip("")
                .labels([
                    (LABEL_SERVICE_NAME, "bad"),
                    (LABEL_MANAGED_BY, "actor"),
                    (LABEL_HEADLESS, "invalid"),
                ])
                .build(),
            vec![("IPv4", "1.2.3.4")],
            managed(&[(LABEL_HEADLESS, "")]),
        ),
        (
            "ipv6 without cluster IP",
            base().cluster_ip("").ip_families(&["IPv6"]).build(),
            vec![("IPv6", "1234::5678:0:0:9abc:def0")],
            managed(&[(LABEL_HEADLESS, "")]),
        ),
        (
            "ipv6 with cluster IP",
            base()
                .cluster_ip("1234::5678:0000:0000:9abc:def1")
                .ip_families(&["IPv6"])
                .build(),
            vec![("IPv6", "1234::5678:0:0:9abc:def0")],
            managed(&[]),
        ),
        (
            "dual stack",
            base().cluster_ip("10.0.0.10").ip_families(&["IPv4", "IPv6"]).build(),
            vec![("IPv4", "1.2.3.4"), ("IPv6", "1234::5678:0:0:9abc:def0")],
            managed(&[]),
        ),
    ];
    for (name, svc, want, labels) in cases {
        let h = Harness::new(100, std::slice::from_ref(&zoned));
        let (result, metrics) = capture(|| block_on(h.reconciler.reconcile(&svc, [&pod1], [], Some(at(42)))));
        result.unwrap();
        assert_eq!(h.api.verbs(), vec![Verb::Create; want.len()], "{name}");
        let slices = h.api.slices();
        let mut got: Vec<(String, String)> = slices
            .iter()
            .map(|s| (s.address_type.clone(), endpoints(s)[0].addresses[0].clone()))
            .collect();
        got.sort();
        let want_pairs: Vec<(String, String)> = want.iter().map(|(t, a)| ((*t).to_owned(), (*a).to_owned())).collect();
        assert_eq!(got, want_pairs, "{name}");
        for slice in &slices {
            assert!(slice.metadata.name.as_deref().unwrap().starts_with("foo-"), "{name}");
            assert_eq!(slice.metadata.labels.as_ref(), Some(&labels), "{name}");
            assert_eq!(
                slice
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(ANNOTATION_LAST_CHANGE_TRIGGER_TIME))
                    .map(String::as_str),
                Some("2024-01-15T10:00:42Z"),
                "{name}"
            );
            assert_eq!(
                endpoints(slice),
                [Endpoint {
                    addresses: endpoints(slice)[0].addresses.clone(),
                    conditions: Some(EndpointConditions {
                        ready: Some(true),
                        serving: Some(true),
                        terminating: Some(false),
                    }),
                    zone: Some("us-central1-a".to_owned()),
                    node_name: Some("node-1".to_owned()),
                    target_ref: Some(ObjectReference {
                        kind: Some("Pod".to_owned()),
                        namespace: Some("test".to_owned()),
                        name: Some("pod1".to_owned()),
                        uid: Some("uid-pod1".to_owned()),
                        ..ObjectReference::default()
                    }),
                    ..Endpoint::default()
                }],
                "{name}: hostname only with a matching subdomain"
            );
            generation_is_tracked(&h, slice, 1);
        }
        let n = want.len() as f64;
        assert_eq!(
            metrics.summary(),
            Expected {
                desired_slices: n,
                actual_slices: n,
                desired_endpoints: n,
                added_per_sync: n,
                created: want.len() as u64,
                changed_per_sync: n,
                ..Expected::default()
            },
            "{name}"
        );
    }
}

#[test]
fn an_existing_placeholder_is_kept_or_rewritten() {
    let identical = {
        let mut s = new_slice(&svc(), IpFamily::V4, &[]);
        s.metadata.generate_name = None;
        s.metadata.name = Some("foo-placeholder".to_owned());
        s
    };
    let different = {
        let mut s = owned_slice(&svc(), 1, &[]);
        s.metadata.labels = Some(BTreeMap::from([("bar".to_owned(), "baz".to_owned())]));
        s
    };
    let cases = [
        ("no existing placeholder", None, vec![Verb::Create], (1, 0)),
        ("existing placeholder that's the same", Some(identical), vec![], (0, 0)),
        (
            "existing placeholder that's different",
            Some(different),
            vec![Verb::Update],
            (0, 1),
        ),
    ];
    for (name, existing, writes, (created, updated)) in cases {
        let h = Harness::new(100, &[node1()]);
        h.api.seed(existing.as_slice());
        let (result, metrics) = capture(|| h.reconcile(&svc(), &[]));
        result.unwrap();
        assert_eq!(h.api.verbs(), writes, "{name}");
        let slices = h.api.slices();
        assert_eq!(slices.len(), 1, "{name}");
        assert_eq!(slices[0].ports.as_deref().unwrap_or_default(), [], "{name}");
        assert!(endpoints(&slices[0]).is_empty(), "{name}");
        assert_eq!(
            metrics.summary(),
            Expected {
                desired_slices: 1.0,
                actual_slices: 1.0,
                created,
                updated,
                changed_per_sync: (created + updated) as f64,
                ..Expected::default()
            },
            "{name}"
        );
    }
}

#[test]
fn publish_not_ready_addresses_makes_every_endpoint_ready() {
    let h = Harness::new(100, &[node1()]);
    let mut publish = svc();
    publish.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
    h.reconcile(&publish, &pods(0..50)).unwrap();
    assert_eq!(h.api.verbs(), [Verb::Create]);
    let slices = h.api.slices();
    assert_eq!(sizes(&slices), [50]);
    assert!(
        endpoints(&slices[0])
            .iter()
            .all(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
    );
    let serving = endpoints(&slices[0])
        .iter()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.serving) == Some(true))
        .count();
    assert_eq!(serving, 33, "serving still follows the pod");
}

#[test]
fn many_pods_fill_three_new_slices() {
    let h = Harness::new(100, &[node1()]);
    let (result, metrics) = capture(|| h.reconcile(&svc(), &pods(0..250)));
    result.unwrap();
    assert_eq!(h.api.verbs(), [Verb::Create; 3]);
    assert_eq!(sizes(&h.api.slices()), [50, 100, 100]);
    assert_eq!(
        metrics.summary(),
        Expected {
            desired_slices: 3.0,
            actual_slices: 3.0,
            desired_endpoints: 250.0,
            added_per_sync: 250.0,
            created: 3,
            changed_per_sync: 3.0,
            ..Expected::default()
        }
    );
}

#[test]
fn some_preexisting_slices_get_a_new_full_slice_and_the_rest() {
    let all = pods(0..250);
    let first: Vec<&PodProjection> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 4 == 1 && *i < 246)
        .map(|(_, p)| p)
        .collect();
    let second: Vec<&PodProjection> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 4 == 3 && *i < 246)
        .map(|(_, p)| p)
        .collect();
    let h = Harness::new(100, &[node1()]);
    h.api
        .seed(&[owned_slice(&svc(), 1, &first), owned_slice(&svc(), 2, &second)]);
    assert_eq!(sizes(&h.api.slices()), [61, 62]);
    let (result, metrics) = capture(|| h.reconcile(&svc(), &all));
    result.unwrap();
    assert_eq!(h.api.verbs(), [Verb::Create, Verb::Update], "creates come first");
    assert_eq!(h.api.calls()[1].name, "foo-1", "the 62-slice is the closest to full");
    assert_eq!(sizes(&h.api.slices()), [61, 89, 100]);
    assert_eq!(
        metrics.summary(),
        Expected {
            desired_slices: 3.0,
            actual_slices: 3.0,
            desired_endpoints: 250.0,
            added_per_sync: 127.0,
            created: 1,
            updated: 1,
            changed_per_sync: 2.0,
            ..Expected::default()
        }
    );
}

#[test]
fn some_preexisting_slices_with_a_remainder_that_does_not_fit_whole() {
    let all = pods(0..300);
    let first: Vec<&PodProjection> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 4 == 1 && *i < 296)
        .map(|(_, p)| p)
        .collect();
    let second: Vec<&PodProjection> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 4 == 3 && *i < 296)
        .map(|(_, p)| p)
        .collect();
    let h = Harness::new(100, &[node1()]);
    h.api
        .seed(&[owned_slice(&svc(), 1, &first), owned_slice(&svc(), 2, &second)]);
    let (result, metrics) = capture(|| h.reconcile(&svc(), &all));
    result.unwrap();
    assert_eq!(h.api.verbs(), [Verb::Create, Verb::Create]);
    assert_eq!(sizes(&h.api.slices()), [52, 74, 74, 100]);
    assert_eq!(
        metrics.summary(),
        Expected {
            desired_slices: 3.0,
            actual_slices: 4.0,
            desired_endpoints: 300.0,
            added_per_sync: 152.0,
            created: 2,
            changed_per_sync: 2.0,
            ..Expected::default()
        }
    );
}

fn with_target_port(svc: &Service, target: i32) -> Service {
    let mut changed = svc.clone();
    changed.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].target_port = Some(IntOrString::Int(target));
    changed
}

#[test]
fn a_port_change_updates_every_slice_in_place() {
    let h = Harness::new(100, &[node1()]);
    let all = pods(0..250);
    h.reconcile(&svc(), &all).unwrap();
    assert_eq!(sizes(&h.api.slices()), [50, 100, 100]);
    let before: Vec<String> = h
        .api
        .slices()
        .iter()
        .map(|s| s.metadata.name.clone().unwrap())
        .collect();
    h.api.clear_calls();

    h.reconcile(&with_target_port(&svc(), 81), &all).unwrap();
    assert_eq!(h.api.verbs(), [Verb::Update; 3]);
    let after = h.api.slices();
    assert_eq!(sizes(&after), [50, 100, 100]);
    let names: Vec<String> = after.iter().map(|s| s.metadata.name.clone().unwrap()).collect();
    assert_eq!(names, before, "the same slices, recycled");
    assert!(after.iter().all(|s| s.ports.as_ref().unwrap()[0].port == Some(81)));
    for call in h.api.calls() {
        assert_eq!(
            call.sent.unwrap().metadata.resource_version,
            None,
            "recycled updates are unconditional"
        );
    }
}

#[test]
fn a_service_label_change_updates_every_slice_in_place() {
    let h = Harness::new(100, &[node1()]);
    let all = pods(0..250);
    h.reconcile(&svc(), &all).unwrap();
    h.api.clear_calls();
    let mut labelled = svc();
    labelled.metadata.labels = Some(BTreeMap::from([("foo".to_owned(), "bar".to_owned())]));
    h.reconcile(&labelled, &all).unwrap();
    assert_eq!(h.api.verbs(), [Verb::Update; 3]);
    let slices = h.api.slices();
    assert_eq!(sizes(&slices), [50, 100, 100]);
    for slice in &slices {
        assert_eq!(
            slice.metadata.labels.as_ref().unwrap().get("foo").map(String::as_str),
            Some("bar")
        );
        assert!(slice.metadata.resource_version.is_some());
    }
    for call in h.api.calls() {
        assert!(
            call.sent.unwrap().metadata.resource_version.is_some(),
            "in-place updates are conditional"
        );
    }
}

#[test]
fn reserved_service_labels_change_nothing() {
    let h = Harness::new(100, &[node1()]);
    let all = pods(0..250);
    h.reconcile(&svc(), &all).unwrap();
    h.api.clear_calls();
    let mut evil = svc();
    evil.metadata.labels = Some(BTreeMap::from([
        (LABEL_SERVICE_NAME.to_owned(), "bad".to_owned()),
        (LABEL_MANAGED_BY.to_owned(), "actor".to_owned()),
        (LABEL_HEADLESS.to_owned(), "invalid".to_owned()),
    ]));
    h.reconcile(&evil, &all).unwrap();
    assert!(h.api.verbs().is_empty());
}

#[test]
fn recycling_repacks_ten_small_slices_into_three_full_ones() {
    let all = pods(0..300);
    let existing: Vec<EndpointSlice> = (0..10)
        .map(|n| {
            let members: Vec<&PodProjection> = all[n * 30..(n + 1) * 30].iter().collect();
            owned_slice(&svc(), n, &members)
        })
        .collect();
    let h = Harness::new(100, &[node1()]);
    h.api.seed(&existing);
    let (result, metrics) = capture(|| {
        h.reconcile(&svc(), &all).unwrap();
        assert!(h.api.verbs().is_empty(), "everything is in place: no repacking");
        h.reconcile(&with_target_port(&svc(), 81), &all)
    });
    result.unwrap();
    assert_eq!(h.api.counts(), (0, 3, 7));
    assert_eq!(sizes(&h.api.slices()), [100, 100, 100]);
    assert_eq!(
        metrics.summary(),
        Expected {
            desired_slices: 3.0,
            actual_slices: 3.0,
            desired_endpoints: 300.0,
            added_per_sync: 300.0,
            updated: 3,
            deleted: 7,
            changed_per_sync: 10.0,
            ..Expected::default()
        }
    );
}

#[test]
fn new_endpoints_go_into_the_fullest_slice_already_being_updated() {
    let first: Vec<PodProjection> = (0..80).map(|i| new_pod(i, true)).collect();
    let second: Vec<PodProjection> = (100..120).map(|i| new_pod(i, true)).collect();
    let h = Harness::new(100, &[node1()]);
    h.api.seed(&[
        owned_slice(&svc(), 1, &first.iter().collect::<Vec<_>>()),
        owned_slice(&svc(), 2, &second.iter().collect::<Vec<_>>()),
    ]);
    let mut now: Vec<PodProjection> = (0..80).chain(100..120).map(|i| new_pod(i, i % 10 != 0)).collect();
    now.extend((200..215).map(|i| new_pod(i, true)));
    let (result, metrics) = capture(|| h.reconcile(&svc(), &now));
    result.unwrap();
    assert_eq!(h.api.verbs(), [Verb::Update, Verb::Update]);
    assert_eq!(sizes(&h.api.slices()), [20, 95]);
    assert_eq!(
        metrics.summary(),
        Expected {
            desired_slices: 2.0,
            actual_slices: 2.0,
            desired_endpoints: 115.0,
            added_per_sync: 15.0,
            updated: 2,
            changed_per_sync: 2.0,
            ..Expected::default()
        }
    );
}

#[test]
fn deprecated_ip_address_type_slices_are_replaced() {
    let first: Vec<PodProjection> = (0..80).map(|i| new_pod(i, true)).collect();
    let second: Vec<PodProjection> = (100..150).map(|i| new_pod(i, true)).collect();
    let legacy = |n, members: &[PodProjection]| {
        let mut slice = owned_slice(&svc(), n, &members.iter().collect::<Vec<_>>());
        slice.address_type = "IP".to_owned();
        slice
    };
    let h = Harness::new(100, &[node1()]);
    h.api.seed(&[legacy(1, &first), legacy(2, &second)]);
    let all: Vec<PodProjection> = first.into_iter().chain(second).collect();
    h.reconcile(&svc(), &all).unwrap();
    assert_eq!(
        h.api.verbs(),
        [Verb::Create, Verb::Create, Verb::Delete, Verb::Delete],
        "replacements first, legacy slices deleted last"
    );
    let slices = h.api.slices();
    assert_eq!(sizes(&slices), [30, 100], "perfectly packed");
    assert!(slices.iter().all(|s| s.address_type == "IPv4"));
}

#[test]
fn a_slice_of_a_recreated_service_is_replaced() {
    for (name, owned, writes) in [
        ("slice owned by the service", true, vec![]),
        (
            "slice owned by another service uid",
            false,
            vec![Verb::Create, Verb::Delete],
        ),
    ] {
        let pod1 = new_pod(1, true);
        let mut slice = owned_slice(&svc(), 1, &[&pod1]);
        if !owned {
            slice.metadata.owner_references.as_mut().unwrap()[0].uid = "different".to_owned();
        }
        let h = Harness::new(100, &[node1()]);
        h.api.seed(&[slice]);
        h.reconcile(&svc(), &[pod1]).unwrap();
        assert_eq!(h.api.verbs(), writes, "{name}");
        assert_eq!(h.api.slices().len(), 1, "{name}");
    }
}

#[test]
fn named_ports_resolving_differently_give_one_slice_group_each() {
    let named = service("test", "named-port-example")
        .selector([("foo", "bar")])
        .port_full("", 80, IntOrString::String("http".to_owned()), "TCP")
        .build();
    let all: Vec<PodProjection> = (0..300)
        .map(|i| {
            pod("test", &format!("pod{i}"))
                .labels([("foo", "bar")])
                .container_port("http", 8080 + i % 5, "TCP")
                .ip(&format!("10.0.{}.{}", i / 256, i % 256))
                .node("node-1")
                .ready(i % 3 != 0)
                .projection()
        })
        .collect();
    let h = Harness::new(100, &[node1()]);
    let (result, metrics) = capture(|| h.reconcile(&named, &all));
    result.unwrap();
    assert_eq!(h.api.verbs(), [Verb::Create; 5]);
    let slices = h.api.slices();
    assert_eq!(sizes(&slices), [60, 60, 60, 60, 60]);
    let mut ports: Vec<EndpointPort> = slices.iter().flat_map(|s| s.ports.clone().unwrap()).collect();
    ports.sort_by_key(|p| p.port);
    let want: Vec<EndpointPort> = (8080..8085)
        .map(|port| EndpointPort {
            name: Some(String::new()),
            port: Some(port),
            protocol: Some("TCP".to_owned()),
            app_protocol: None,
        })
        .collect();
    assert_eq!(ports, want);
    assert!(slices.iter().all(|s| s.address_type == "IPv4"));
    assert_eq!(
        metrics.summary(),
        Expected {
            desired_slices: 5.0,
            actual_slices: 5.0,
            desired_endpoints: 300.0,
            added_per_sync: 300.0,
            created: 5,
            changed_per_sync: 5.0,
            ..Expected::default()
        }
    );
}

#[test]
fn max_endpoints_per_slice_sets_the_slice_sizes() {
    for (max, want) in [
        (50, vec![50, 50, 50, 50, 50]),
        (80, vec![10, 80, 80, 80]),
        (150, vec![100, 150]),
        (250, vec![250]),
        (500, vec![250]),
    ] {
        let h = Harness::new(max, &[node1()]);
        let (result, metrics) = capture(|| h.reconcile(&svc(), &pods(0..250)));
        result.unwrap();
        assert_eq!(sizes(&h.api.slices()), want, "max {max}");
        let n = want.len() as f64;
        assert_eq!(
            metrics.summary(),
            Expected {
                desired_slices: n,
                actual_slices: n,
                desired_endpoints: 250.0,
                added_per_sync: 250.0,
                created: want.len() as u64,
                changed_per_sync: n,
                ..Expected::default()
            },
            "max {max}"
        );
    }
}

#[test]
fn metrics_accumulate_over_syncs() {
    let h = Harness::new(100, &[node1()]);
    let all: Vec<PodProjection> = (0..20).map(|i| new_pod(i, true)).collect();
    let ((), metrics) = capture(|| {
        h.reconcile(&svc(), &all).unwrap();
        assert_eq!(h.api.verbs(), [Verb::Create]);
        h.reconcile(&svc(), &all[0..10]).unwrap();
    });
    assert_eq!(h.api.verbs(), [Verb::Create, Verb::Update]);
    assert_eq!(
        metrics.summary(),
        Expected {
            desired_slices: 1.0,
            actual_slices: 1.0,
            desired_endpoints: 10.0,
            added_per_sync: 20.0,
            removed_per_sync: 10.0,
            created: 1,
            updated: 1,
            changed_per_sync: 2.0,
            ..Expected::default()
        }
    );
}

fn deleting(svc: &Service) -> Service {
    let mut doomed = svc.clone();
    doomed.metadata.deletion_timestamp = Some(Time(at(3600)));
    doomed
}

#[test]
fn a_service_being_deleted_gets_updates_and_deletes_but_no_creates() {
    // Upstream's TestReconcilerFinalizeSvcDeletionTimestamp, driven through
    // whole reconciles: "to-update" has an endpoint turning not ready and
    // is full (max 2), a third pod needs a new slice; "to-delete" holds only
    // a pod that is gone, or has an old port (then it is recycled).
    let p1 = new_pod(1, true);
    let p2 = new_pod(2, true);
    let p3 = new_pod(3, true);
    let gone = new_pod(9, true);
    let now = [new_pod(1, false), p2.clone(), p3];
    let to_update = || owned_slice(&svc(), 1, &[&p1, &p2]);
    let to_delete = || owned_slice(&svc(), 2, &[&gone]);
    let old_port = || {
        let mut s = owned_slice(&svc(), 2, &[]);
        s.ports.as_mut().unwrap()[0].port = Some(79);
        s
    };
    type Case = (&'static str, bool, Vec<EndpointSlice>, Vec<Verb>, Vec<&'static str>);
    let cases: Vec<Case> = vec![
        (
            "create and update",
            false,
            vec![to_update()],
            vec![Verb::Create, Verb::Update],
            vec!["foo-1", "foo-aaaab"],
        ),
        (
            "create and update, service deleting",
            true,
            vec![to_update()],
            vec![Verb::Update],
            vec!["foo-1"],
        ),
        (
            "create recycled into the slice to delete",
            false,
            vec![to_update(), old_port()],
            vec![Verb::Update, Verb::Update],
            vec!["foo-1", "foo-2"],
        ),
        (
            "create recycled into the slice to delete, service deleting",
            true,
            vec![to_update(), old_port()],
            vec![Verb::Update, Verb::Update],
            vec!["foo-1", "foo-2"],
        ),
        (
            "update and delete, service deleting",
            true,
            vec![owned_slice(&svc(), 1, &[&p1, &p2, &new_pod(3, true)]), to_delete()],
            vec![Verb::Update, Verb::Delete],
            vec!["foo-1"],
        ),
    ];
    for (name, doomed, existing, writes, remaining) in cases {
        let h = Harness::new(2, &[node1()]);
        h.api.seed(&existing);
        let service = if doomed { deleting(&svc()) } else { svc() };
        h.reconcile(&service, &now).unwrap();
        assert_eq!(h.api.verbs(), writes, "{name}");
        let names: Vec<String> = h
            .api
            .slices()
            .iter()
            .map(|s| s.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, remaining, "{name}");
    }
}

#[test]
fn pods_on_missing_nodes() {
    let node0 = node("node-0", None, "1");
    let on = |n: usize, node: &str| {
        pod("test", &format!("pod{n}"))
            .labels([("foo", "bar")])
            .ip(&format!("10.0.0.{n}"))
            .node(node)
            .ready(true)
            .projection()
    };
    let both = [on(0, "node-0"), on(1, "node-1")];
    let existing = |svc: &Service| {
        let mut slice = owned_slice(svc, 1, &[]);
        set_endpoints(
            &mut slice,
            both.iter()
                .map(|p| pod_to_endpoint(p, Some(&node("x", None, "1")), svc, IpFamily::V4))
                .collect(),
        );
        slice
    };
    type Case = (&'static str, bool, Vec<Node>, bool, Vec<Verb>, Expected, bool);
    let cases: Vec<Case> = vec![
        (
            "create, publishNotReady false",
            false,
            vec![node0.clone()],
            false,
            vec![Verb::Create],
            Expected {
                desired_slices: 1.0,
                actual_slices: 1.0,
                desired_endpoints: 1.0,
                added_per_sync: 1.0,
                created: 1,
                changed_per_sync: 1.0,
                ..Expected::default()
            },
            true,
        ),
        (
            "create, publishNotReady true",
            true,
            vec![node0.clone()],
            false,
            vec![Verb::Create],
            Expected {
                desired_slices: 1.0,
                actual_slices: 1.0,
                desired_endpoints: 2.0,
                added_per_sync: 2.0,
                created: 1,
                changed_per_sync: 1.0,
                ..Expected::default()
            },
            false,
        ),
        (
            "update, publishNotReady false",
            false,
            vec![node0.clone()],
            true,
            vec![Verb::Update],
            Expected {
                desired_slices: 1.0,
                actual_slices: 1.0,
                desired_endpoints: 1.0,
                removed_per_sync: 1.0,
                updated: 1,
                changed_per_sync: 1.0,
                ..Expected::default()
            },
            true,
        ),
        (
            "update, publishNotReady true, all nodes missing",
            true,
            vec![],
            true,
            vec![],
            Expected {
                desired_slices: 1.0,
                actual_slices: 1.0,
                desired_endpoints: 2.0,
                ..Expected::default()
            },
            false,
        ),
        (
            "update, publishNotReady true",
            true,
            vec![node0.clone()],
            true,
            vec![],
            Expected {
                desired_slices: 1.0,
                actual_slices: 1.0,
                desired_endpoints: 2.0,
                ..Expected::default()
            },
            false,
        ),
        (
            "update, publishNotReady false, no nodes: the slice becomes the placeholder",
            false,
            vec![],
            true,
            vec![Verb::Update],
            Expected {
                desired_slices: 1.0,
                actual_slices: 1.0,
                removed_per_sync: 2.0,
                updated: 1,
                changed_per_sync: 1.0,
                ..Expected::default()
            },
            true,
        ),
    ];
    for (name, publish, nodes, has_slice, writes, expected, fails) in cases {
        let mut service = svc();
        service.spec.as_mut().unwrap().publish_not_ready_addresses = Some(publish);
        let h = Harness::new(100, &nodes);
        if has_slice {
            h.api.seed(&[existing(&service)]);
        }
        let (result, metrics) = capture(|| h.reconcile(&service, &both));
        assert_eq!(result.is_err(), fails, "{name}: {result:?}");
        if let Err(errors) = result {
            assert!(
                errors
                    .to_string()
                    .contains("skipping Pod pod1 for Service test/foo: Node node-1 Not Found"),
                "{name}: {errors}"
            );
        }
        assert_eq!(h.api.verbs(), writes, "{name}");
        assert_eq!(h.api.slices().len(), 1, "{name}");
        assert_eq!(metrics.summary(), expected, "{name}");
    }
}

#[test]
fn a_second_sync_over_the_written_slices_writes_nothing() {
    let dual = service("test", "foo")
        .selector([("foo", "bar")])
        .ip_families(&["IPv4", "IPv6"])
        .port("foo", 80, 80)
        .build();
    let dual_pods: Vec<PodProjection> = (0..130)
        .map(|i| {
            pod("test", &format!("pod{i}"))
                .ips(&[&format!("10.0.{}.{}", i / 256, i % 256), &format!("fd00::{i:x}")])
                .node("node-1")
                .ready(i % 2 == 0)
                .projection()
        })
        .collect();
    let headless = service("test", "foo").selector([("foo", "bar")]).headless().build();
    let cases: Vec<(&str, Service, Vec<PodProjection>)> = vec![
        ("many pods", svc(), pods(0..250)),
        ("no pods", svc(), Vec::new()),
        ("dual stack, IPv4 pods only", dual.clone(), pods(0..10)),
        ("dual stack", dual, dual_pods),
        ("headless without ports", headless, pods(0..3)),
    ];
    for (name, service, pods) in cases {
        let h = Harness::new(100, &[node1()]);
        h.reconcile(&service, &pods).unwrap();
        assert!(!h.api.verbs().is_empty(), "{name}: first sync writes");
        h.api.clear_calls();
        h.reconcile(&service, &pods).unwrap();
        assert!(h.api.verbs().is_empty(), "{name}: {:?}", h.api.calls());
    }
}

#[test]
fn a_port_less_slice_returned_with_null_ports_is_current() {
    // The API server drops an empty `ports` list; the group key treats null
    // and empty alike, so the slice is not rewritten (issue #133474).
    let headless = service("test", "foo").selector([("foo", "bar")]).headless().build();
    let all = pods(0..3);
    let mut stored = new_slice(&headless, IpFamily::V4, &[]);
    stored.metadata.generate_name = None;
    stored.metadata.name = Some("foo-abcde".to_owned());
    stored.ports = None;
    set_endpoints(&mut stored, all.iter().map(|p| endpoint_of(&headless, p)).collect());
    let h = Harness::new(100, &[node1()]);
    h.api.seed(&[stored]);
    h.reconcile(&headless, &all).unwrap();
    assert!(h.api.verbs().is_empty());
}

#[test]
fn the_service_key_of_written_slices_is_tracked_as_current() {
    let h = Harness::new(100, &[node1()]);
    h.reconcile(&svc(), &pods(0..150)).unwrap();
    let key = ObjectKey::new("test", "foo");
    let tracker = h.reconciler.tracker();
    assert!(!tracker.stale_slices(&key, &h.api.slices()));
    assert!(
        tracker.stale_slices(&key, &h.api.slices()[..1]),
        "a written slice missing from the list"
    );
    for slice in h.api.slices() {
        assert!(!tracker.should_sync(&slice), "our own write coming back needs no sync");
    }

    h.reconcile(&svc(), &[]).unwrap();
    assert_eq!(
        h.api.counts(),
        (2, 1, 1),
        "the placeholder takes one slice over, the other goes"
    );
    let deleted = h
        .api
        .calls()
        .into_iter()
        .find(|c| c.verb == Verb::Delete)
        .map(|c| c.name)
        .unwrap();
    assert!(!tracker.stale_slices(&key, &h.api.slices()));
    let mut ghost = EndpointSlice::default();
    ghost.metadata.name = Some(deleted.clone());
    ghost.metadata.namespace = Some("test".to_owned());
    ghost.metadata.uid = Some(format!("uid-{deleted}"));
    ghost.metadata.labels = Some(BTreeMap::from([(LABEL_SERVICE_NAME.to_owned(), "foo".to_owned())]));
    let mut listed = h.api.slices();
    listed.push(ghost.clone());
    assert!(
        tracker.stale_slices(&key, &listed),
        "a slice we deleted is still listed"
    );
    assert!(tracker.handle_deletion(&ghost), "its deletion was expected");
}
