//! Upstream's `TestReconcileTopology` and `TestReconcile_TrafficDistribution`
//! re-expressed, with the topology cache, events and metrics they imply.

// Test code: panicking on a broken expectation is the point, and metric
// values are compared exactly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::float_cmp)]

mod support;

use std::collections::BTreeMap;

use ecm_endpointslice::new_slice;
use ecm_endpointslice::pod_to_endpoint;
use ecm_informer::ObjectKey;
use ecm_types::endpoint_slice::{endpoints, set_endpoints};
use ecm_types::fixtures::{pod, service};
use ecm_types::wellknown::{ANNOTATION_TOPOLOGY_AWARE_HINTS, ANNOTATION_TOPOLOGY_MODE};
use ecm_types::{IpFamily, PodProjection};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use support::{Expected, Harness, Verb, capture, node};

fn svc(annotations: &[(&str, &str)], traffic_distribution: Option<&str>) -> Service {
    let mut svc = service("testing", "foo")
        .selector([("foo", "bar")])
        .port("foo", 80, 80)
        .build();
    svc.metadata.annotations = Some(
        annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    svc.spec.as_mut().unwrap().traffic_distribution = traffic_distribution.map(str::to_owned);
    svc
}

/// Three zones with ten 100m nodes each and one pod per node; pod `i*100+j`
/// runs on `node-<zone>-<j>`.
fn three_zones() -> (Vec<Node>, Vec<PodProjection>) {
    let mut nodes = Vec::new();
    let mut pods = Vec::new();
    for (i, zone) in ["zone-a", "zone-b", "zone-c"].iter().enumerate() {
        for j in 0..10 {
            let name = format!("node-{zone}-{j}");
            nodes.push(node(&name, Some(zone), "100m"));
            let n = i * 100 + j;
            pods.push(
                pod("testing", &format!("pod{n}"))
                    .labels([("foo", "bar")])
                    .ip(&format!("10.0.{i}.{j}"))
                    .node(&name)
                    .ready(true)
                    .projection(),
            );
        }
    }
    (nodes, pods)
}

/// A stored slice `name` of `svc` holding the endpoints of `pods`.
fn stored(svc: &Service, name: &str, pods: &[&PodProjection], nodes: &[Node]) -> EndpointSlice {
    let mut slice = new_slice(svc, IpFamily::V4, &[support_port()]);
    slice.metadata.generate_name = None;
    slice.metadata.name = Some(name.to_owned());
    set_endpoints(
        &mut slice,
        pods.iter()
            .map(|p| {
                let node = nodes.iter().find(|n| n.metadata.name == p.node_name);
                pod_to_endpoint(p, node, svc, IpFamily::V4)
            })
            .collect(),
    );
    slice
}

fn support_port() -> k8s_openapi::api::discovery::v1::EndpointPort {
    k8s_openapi::api::discovery::v1::EndpointPort {
        name: Some("foo".to_owned()),
        port: Some(80),
        protocol: Some("TCP".to_owned()),
        app_protocol: None,
    }
}

/// Zone hints per zone over all slices, and how many endpoints are hinted
/// for a zone other than their own. Endpoints without hints count under "".
fn hint_distribution(slices: &[EndpointSlice]) -> (BTreeMap<String, usize>, usize) {
    let mut by_zone = BTreeMap::new();
    let mut cross_zone = 0;
    for endpoint in slices.iter().flat_map(endpoints) {
        let zones: Vec<&str> = endpoint
            .hints
            .as_ref()
            .and_then(|h| h.for_zones.as_deref())
            .unwrap_or_default()
            .iter()
            .map(|z| z.name.as_str())
            .collect();
        assert!(zones.len() <= 1, "one zone hint at most: {endpoint:?}");
        let hint = zones.first().copied().unwrap_or_default();
        *by_zone.entry(hint.to_owned()).or_default() += 1;
        if !hint.is_empty() && endpoint.zone.as_deref() != Some(hint) {
            cross_zone += 1;
        }
    }
    (by_zone, cross_zone)
}

fn distribution(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(z, n)| ((*z).to_owned(), *n)).collect()
}

#[test]
fn topology_annotation_table() {
    let (nodes, pods) = three_zones();
    let owner = svc(&[], None);
    let slice_pods = |indexes: &[usize]| -> Vec<&PodProjection> { indexes.iter().map(|i| &pods[*i]).collect() };
    let zone_a_b = [7, 8, 16, 17, 18];
    let zone_a_c = [5, 6, 25, 26];
    let zone_c = [27, 28, 29];
    let slice = |name: &str, indexes: &[usize]| stored(&owner, name, &slice_pods(indexes), &nodes);
    type Case<'a> = (
        &'a str,
        bool,
        &'a str,
        Vec<EndpointSlice>,
        Vec<usize>,
        Option<Vec<(&'a str, usize)>>,
        usize,
        Expected,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "annotation auto before any node data: no hints, nothing to remove",
            false,
            "auto",
            vec![slice("zone-c", &zone_c)],
            zone_c.to_vec(),
            None,
            0,
            Expected {
                desired_slices: 1.0,
                actual_slices: 1.0,
                desired_endpoints: 3.0,
                ..Expected::default()
            },
        ),
        (
            "annotation auto",
            true,
            "auto",
            vec![slice("zone-c", &zone_c)],
            zone_c.to_vec(),
            Some(vec![("zone-a", 1), ("zone-b", 1), ("zone-c", 1)]),
            2,
            Expected {
                desired_slices: 1.0,
                actual_slices: 1.0,
                desired_endpoints: 3.0,
                updated: 1,
                changed_per_sync_topology: 1.0,
                ..Expected::default()
            },
        ),
        (
            "annotation auto, minimum shares beyond the endpoints there are",
            true,
            "auto",
            vec![slice("zone-a-c", &zone_a_c)],
            zone_a_c.to_vec(),
            None,
            0,
            Expected {
                desired_slices: 1.0,
                actual_slices: 1.0,
                desired_endpoints: 4.0,
                ..Expected::default()
            },
        ),
        (
            "annotation Auto, more slices and endpoints",
            true,
            "Auto",
            vec![slice("zone-a-c", &zone_a_c), slice("zone-a-b", &zone_a_b)],
            zone_a_c.iter().chain(&zone_a_b).copied().collect(),
            Some(vec![("zone-a", 3), ("zone-b", 3), ("zone-c", 3)]),
            1,
            Expected {
                desired_slices: 1.0,
                actual_slices: 2.0,
                desired_endpoints: 9.0,
                updated: 2,
                changed_per_sync_topology: 2.0,
                ..Expected::default()
            },
        ),
        (
            "annotation disabled, more slices and endpoints",
            true,
            "disabled",
            vec![slice("zone-a-c", &zone_a_c), slice("zone-a-b", &zone_a_b)],
            zone_a_c.iter().chain(&zone_a_b).copied().collect(),
            None,
            0,
            Expected {
                desired_slices: 1.0,
                actual_slices: 2.0,
                desired_endpoints: 9.0,
                ..Expected::default()
            },
        ),
    ];
    for (name, nodes_known, annotation, existing, pod_indexes, want_hints, want_cross_zone, want_metrics) in cases {
        let h = Harness::new(100, &nodes);
        if nodes_known {
            h.reconciler.topology().set_nodes(&nodes);
        }
        h.api.seed(&existing);
        let service = svc(&[(ANNOTATION_TOPOLOGY_AWARE_HINTS, annotation)], None);
        let selected: Vec<PodProjection> = pod_indexes.iter().map(|i| pods[*i].clone()).collect();
        let (result, metrics) = capture(|| h.reconcile(&service, &selected));
        result.unwrap();
        assert_eq!(metrics.summary(), want_metrics, "{name}");
        let slices = h.api.slices();
        assert_eq!(slices.len() as f64, want_metrics.actual_slices, "{name}");
        let (by_zone, cross_zone) = hint_distribution(&slices);
        match want_hints {
            None => assert_eq!(by_zone.keys().collect::<Vec<_>>(), [""], "{name}: no hints"),
            Some(want) => assert_eq!(by_zone, distribution(&want), "{name}"),
        }
        assert_eq!(cross_zone, want_cross_zone, "{name}");
    }
}

#[test]
fn the_first_surplus_endpoint_in_slice_order_is_re_hinted() {
    // Scenario 42: equal CPU in zone-a and zone-b, three endpoints in
    // zone-a and one in zone-b: the first zone-a endpoint goes to zone-b.
    let nodes = [node("node-a", Some("zone-a"), "4"), node("node-b", Some("zone-b"), "4")];
    let on = |name: &str, ip: &str, node: &str| {
        pod("testing", name)
            .labels([("foo", "bar")])
            .ip(ip)
            .node(node)
            .ready(true)
            .projection()
    };
    let pods = [
        on("a1", "10.244.1.11", "node-a"),
        on("a2", "10.244.1.12", "node-a"),
        on("a3", "10.244.1.13", "node-a"),
        on("b1", "10.244.2.11", "node-b"),
    ];
    let service = svc(&[(ANNOTATION_TOPOLOGY_MODE, "Auto")], Some("PreferClose"));
    let h = Harness::new(100, &nodes);
    h.reconciler.topology().set_nodes(&nodes);
    h.api
        .seed(&[stored(&service, "foo-abcde", &pods.iter().collect::<Vec<_>>(), &nodes)]);
    h.reconcile(&service, &pods).unwrap();
    assert_eq!(h.api.verbs(), [Verb::Update]);
    let hints: Vec<(String, String)> = endpoints(&h.api.slices()[0])
        .iter()
        .map(|e| {
            (
                e.target_ref.as_ref().and_then(|t| t.name.clone()).unwrap(),
                e.hints.as_ref().unwrap().for_zones.as_ref().unwrap()[0].name.clone(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [("a1", "zone-b"), ("a2", "zone-a"), ("a3", "zone-a"), ("b1", "zone-b")]
        .iter()
        .map(|(p, z)| ((*p).to_owned(), (*z).to_owned()))
        .collect();
    assert_eq!(hints, want);
    h.api.clear_calls();
    h.reconcile(&service, &pods).unwrap();
    assert!(h.api.verbs().is_empty(), "the hints are stable");
}

#[test]
fn traffic_distribution_table() {
    let zones = ["zone-a", "zone-b", "zone-c"];
    let nodes: Vec<Node> = zones
        .iter()
        .enumerate()
        .map(|(i, zone)| node(&format!("node-{i}"), Some(zone), "100m"))
        .collect();
    let placement = [0, 1, 1, 1, 2, 2];
    let pods: Vec<PodProjection> = placement
        .iter()
        .enumerate()
        .map(|(i, n)| {
            pod("ns1", &format!("pod{i}"))
                .labels([("foo", "bar")])
                .ip(&format!("10.0.0.{i}"))
                .node(&format!("node-{n}"))
                .ready(true)
                .projection()
        })
        .collect();
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        &'a str,
        Vec<(&'a str, usize)>,
        usize,
        Expected,
        f64,
    );
    let base = Expected {
        desired_slices: 1.0,
        actual_slices: 1.0,
        desired_endpoints: 6.0,
        added_per_sync: 6.0,
        created: 1,
        ..Expected::default()
    };
    let cases: Vec<Case<'_>> = vec![
        (
            "PreferClose, annotation Disabled",
            Some("PreferClose"),
            "Disabled",
            vec![("zone-a", 1), ("zone-b", 3), ("zone-c", 2)],
            0,
            Expected {
                changed_per_sync_prefer_close: 1.0,
                ..base.clone()
            },
            1.0,
        ),
        (
            "PreferClose, annotation Auto wins",
            Some("PreferClose"),
            "Auto",
            vec![("zone-a", 2), ("zone-b", 2), ("zone-c", 2)],
            1,
            Expected {
                changed_per_sync_topology: 1.0,
                ..base.clone()
            },
            0.0,
        ),
        (
            "no traffic distribution, no annotation",
            None,
            "",
            vec![("", 6)],
            0,
            Expected {
                changed_per_sync: 1.0,
                ..base.clone()
            },
            0.0,
        ),
    ];
    for (name, traffic_distribution, annotation, want_hints, want_cross_zone, want_metrics, prefer_close_services) in
        cases
    {
        let h = Harness::new(100, &nodes);
        h.reconciler.topology().set_nodes(&nodes);
        let service = {
            let mut s = svc(&[(ANNOTATION_TOPOLOGY_AWARE_HINTS, annotation)], traffic_distribution);
            s.metadata.namespace = Some("ns1".to_owned());
            s
        };
        let (result, metrics) = capture(|| h.reconcile(&service, &pods));
        result.unwrap();
        let (by_zone, cross_zone) = hint_distribution(&h.api.slices());
        assert_eq!(by_zone, distribution(&want_hints), "{name}");
        assert_eq!(cross_zone, want_cross_zone, "{name}");
        assert_eq!(metrics.summary(), want_metrics, "{name}");
        assert_eq!(
            metrics.services_with_traffic_distribution("PreferClose"),
            prefer_close_services,
            "{name}"
        );
    }
}

#[test]
fn prefer_same_node_hints_zone_and_node() {
    let nodes = [node("node-a", Some("zone-a"), "1")];
    let pods = [pod("testing", "p")
        .labels([("foo", "bar")])
        .ip("10.0.0.1")
        .node("node-a")
        .ready(true)
        .projection()];
    let h = Harness::new(100, &nodes);
    let (result, metrics) = capture(|| h.reconcile(&svc(&[], Some("PreferSameNode")), &pods));
    result.unwrap();
    let hints = endpoints(&h.api.slices()[0])[0].hints.clone().unwrap();
    assert_eq!(hints.for_zones.unwrap()[0].name, "zone-a");
    assert_eq!(hints.for_nodes.unwrap()[0].name, "node-a");
    assert_eq!(metrics.services_with_traffic_distribution("PreferSameNode"), 1.0);
}

#[test]
fn hint_events_are_recorded_once_and_the_cache_follows_the_annotation() {
    let nodes = [node("node-a", Some("zone-a"), "1"), node("node-b", Some("zone-b"), "1")];
    let pods: Vec<PodProjection> = ["node-a", "node-b"]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            pod("testing", &format!("p{i}"))
                .labels([("foo", "bar")])
                .ip(&format!("10.0.0.{i}"))
                .node(n)
                .ready(true)
                .projection()
        })
        .collect();
    let key = ObjectKey::new("testing", "foo");
    let h = Harness::new(100, &nodes);
    h.reconciler.topology().set_nodes(&nodes);
    let auto = svc(&[(ANNOTATION_TOPOLOGY_MODE, "Auto")], None);
    h.reconcile(&auto, &pods).unwrap();
    h.reconcile(&auto, &pods).unwrap();
    assert_eq!(
        h.events(),
        [(
            "TopologyAwareHintsEnabled".to_owned(),
            "Topology Aware Hints has been enabled, addressType: IPv4".to_owned()
        )]
    );
    let recorded = h.reconciler.topology().hints(&key, "IPv4").unwrap();
    assert_eq!(recorded.values().sum::<i64>(), 2);
    assert!(h.reconciler.topology().overloaded_services().is_empty());

    h.api.clear_calls();
    h.reconcile(&svc(&[], None), &pods).unwrap();
    assert_eq!(h.api.verbs(), [Verb::Update], "hints are removed from the slice");
    assert!(endpoints(&h.api.slices()[0]).iter().all(|e| e.hints.is_none()));
    assert_eq!(
        h.events().last().unwrap(),
        &(
            "TopologyAwareHintsDisabled".to_owned(),
            "Topology Aware Hints has been disabled, addressType: IPv4".to_owned()
        )
    );
    assert_eq!(h.reconciler.topology().hints(&key, "IPv4"), None);
    assert!(!h.reconciler.topology().has_populated_hints(&key));
}

#[test]
fn a_node_without_zone_disables_hints_and_removes_existing_ones() {
    // Scenario 45: node-x has no zone, so SetNodes gives up for the cluster.
    let nodes = [
        node("node-a", Some("zone-a"), "1"),
        node("node-b", Some("zone-b"), "1"),
        node("node-x", None, "1"),
    ];
    let pods: Vec<PodProjection> = ["node-a", "node-b"]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            pod("testing", &format!("p{i}"))
                .labels([("foo", "bar")])
                .ip(&format!("10.0.0.{i}"))
                .node(n)
                .ready(true)
                .projection()
        })
        .collect();
    let service = svc(&[(ANNOTATION_TOPOLOGY_MODE, "Auto")], None);
    let mut existing = stored(&service, "foo-abcde", &pods.iter().collect::<Vec<_>>(), &nodes);
    for endpoint in ecm_types::endpoint_slice::endpoints_mut(&mut existing) {
        let zone = endpoint.zone.clone().unwrap();
        endpoint.hints = Some(k8s_openapi::api::discovery::v1::EndpointHints {
            for_zones: Some(vec![k8s_openapi::api::discovery::v1::ForZone { name: zone }]),
            for_nodes: None,
        });
    }
    let h = Harness::new(100, &nodes);
    h.reconciler.topology().set_nodes(&nodes);
    h.api.seed(&[existing]);
    h.reconcile(&service, &pods).unwrap();
    assert_eq!(h.api.verbs(), [Verb::Update]);
    assert!(endpoints(&h.api.slices()[0]).iter().all(|e| e.hints.is_none()));
    assert_eq!(
        h.events(),
        [(
            "TopologyAwareHintsDisabled".to_owned(),
            "Insufficient Node information: allocatable CPU or zone not specified on one or more nodes, \
             addressType: IPv4"
                .to_owned()
        )]
    );
}
