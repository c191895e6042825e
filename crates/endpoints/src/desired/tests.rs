//! Table tests for the desired Endpoints of a Service: upstream's
//! `TestSyncEndpoints*` / `TestSyncService*` cases that are about what gets
//! computed and written, and the v1.36 conformance scenarios
//! (`../shared/conformance/scenarios/endpoints/`), in our own data.
//!
//! Expected values are spelled out in full and compared exactly, in ecm's
//! documented order (see `ecm_types::repack`): addresses by IP bytes then uid,
//! ports by (name, number, protocol, appProtocol), subsets by first port.
//! Selecting pods is the caller's job, so every pod given here is one the
//! Service's selector matched.

use super::*;
use ecm_types::fixtures::{ServiceBuilder, at, pod, service};
use k8s_openapi::api::core::v1::{EndpointAddress, ObjectReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::SignedDuration;

const NS: &str = "ns";

// ---------------------------------------------------------------- helpers

/// The address `desired_subsets` writes for fixture pod `pod` (uid
/// `uid-<pod>`) at `ip` on `node` (`""`: unscheduled).
fn address(ip: &str, pod: &str, node: &str) -> EndpointAddress {
    EndpointAddress {
        ip: ip.to_owned(),
        hostname: None,
        node_name: Some(node.to_owned()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".to_owned()),
            namespace: Some(NS.to_owned()),
            name: Some(pod.to_owned()),
            uid: Some(format!("uid-{pod}")),
            ..ObjectReference::default()
        }),
    }
}

fn with_hostname(address: EndpointAddress, hostname: &str) -> EndpointAddress {
    EndpointAddress {
        hostname: Some(hostname.to_owned()),
        ..address
    }
}

fn port(name: &str, number: i32, protocol: &str) -> EndpointPort {
    EndpointPort {
        name: (!name.is_empty()).then(|| name.to_owned()),
        port: number,
        protocol: Some(protocol.to_owned()),
        app_protocol: None,
    }
}

fn tcp(name: &str, number: i32) -> EndpointPort {
    port(name, number, "TCP")
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

fn subset(ready: Vec<EndpointAddress>, not_ready: Vec<EndpointAddress>, ports: Vec<EndpointPort>) -> EndpointSubset {
    EndpointSubset {
        addresses: non_empty(ready),
        not_ready_addresses: non_empty(not_ready),
        ports: non_empty(ports),
    }
}

fn label_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// A ClusterIP Service `web` selecting `app=web`, labelled `app=web`.
fn web() -> ServiceBuilder {
    service(NS, "web").selector([("app", "web")]).labels([("app", "web")])
}

/// `web` with one TCP port `http` 80 → 8080.
fn web_http() -> Service {
    web().port("http", 80, 8080).build()
}

/// A stored Endpoints `ns/web` at resourceVersion 7.
fn stored(labels: &[(&str, &str)], subsets: Option<Vec<EndpointSubset>>) -> Endpoints {
    Endpoints {
        metadata: ObjectMeta {
            name: Some("web".to_owned()),
            namespace: Some(NS.to_owned()),
            uid: Some("uid-endpoints-web".to_owned()),
            resource_version: Some("7".to_owned()),
            labels: Some(label_map(labels)),
            ..ObjectMeta::default()
        },
        subsets,
    }
}

const MANAGED_BY: (&str, &str) = (LABEL_ENDPOINTS_MANAGED_BY, MANAGED_BY_ENDPOINTS_CONTROLLER);
const HEADLESS: (&str, &str) = (LABEL_HEADLESS, "");
/// `at(0)` as the trigger-time annotation spells it.
const AT_0: &str = "2024-01-15T10:00:00Z";

fn annotations(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    non_empty(pairs.to_vec()).map(|p| label_map(&p))
}

// ------------------------------------------------------ desired_subsets

/// `TestSyncEndpointsItems`, scenario 02: numeric targetPorts are used
/// verbatim (8088 is declared by no container) and every pod serving the
/// same ports lands in one subset.
#[test]
fn numeric_target_ports_are_used_verbatim_and_share_one_subset() {
    let svc = web().port("port0", 80, 8080).port("port1", 88, 8088).build();
    let pods: Vec<_> = [("pod0", "1.2.3.4"), ("pod1", "1.2.3.5"), ("pod2", "1.2.3.6")]
        .into_iter()
        .map(|(name, ip)| {
            pod(NS, name)
                .ip(ip)
                .ready(true)
                .container_port("port0", 8080, "TCP")
                .container_port("port1", 8081, "TCP")
                .projection()
        })
        .collect();
    let desired = desired_subsets(&svc, &pods);
    assert_eq!(
        desired.subsets,
        [subset(
            vec![
                address("1.2.3.4", "pod0", ""),
                address("1.2.3.5", "pod1", ""),
                address("1.2.3.6", "pod2", "")
            ],
            vec![],
            vec![tcp("port0", 8080), tcp("port1", 8088)],
        )]
    );
    assert_eq!((desired.ready, desired.not_ready), (6, 0), "one count per (pod, port)");
}

/// `TestSyncEndpointsProtocolTCP`, `...UDP`, `...SCTP`.
#[test]
fn protocol_is_copied_from_the_service_port() {
    for protocol in ["TCP", "UDP", "SCTP"] {
        let svc = web().port_full("", 80, IntOrString::Int(8080), protocol).build();
        let pods = [pod(NS, "pod0").ip("1.2.3.4").ready(true).projection()];
        assert_eq!(
            desired_subsets(&svc, &pods).subsets,
            [subset(
                vec![address("1.2.3.4", "pod0", "")],
                vec![],
                vec![port("", 8080, protocol)]
            )],
            "{protocol}"
        );
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Listed {
    Ready,
    NotReady,
    Absent,
}

/// `TestSyncServiceAddresses` (every row), scenarios 07 and 08, and the
/// terminal-phase cases of `TestSyncEndpointsItemsExcludeNotReadyPodsWith*`:
/// readiness is the Ready condition alone, whatever the phase; terminal pods
/// are never listed; terminating pods are dropped unless the Service
/// publishes not-ready addresses, which lists every other pod as ready.
#[test]
fn readiness_is_the_ready_condition_and_terminal_or_deleting_pods_are_dropped() {
    use Listed::{Absent, NotReady, Ready};
    // (case, phase, Ready condition, deleting, publishNotReadyAddresses, expected)
    let cases: [(&str, &str, Option<bool>, bool, bool, Listed); 22] = [
        ("running, ready", "Running", Some(true), false, false, Ready),
        ("running, ready, deleting", "Running", Some(true), true, false, Absent),
        ("unknown phase, ready", "Unknown", Some(true), false, false, Ready),
        (
            "unknown phase, ready, deleting",
            "Unknown",
            Some(true),
            true,
            false,
            Absent,
        ),
        ("pending, ready", "Pending", Some(true), false, false, Ready),
        ("pending, ready, deleting", "Pending", Some(true), true, false, Absent),
        (
            "unknown phase, not ready",
            "Unknown",
            Some(false),
            false,
            false,
            NotReady,
        ),
        ("pending, not ready", "Pending", Some(false), false, false, NotReady),
        ("running, no Ready condition", "Running", None, false, false, NotReady),
        ("failed", "Failed", Some(false), false, false, Absent),
        ("succeeded", "Succeeded", Some(false), false, false, Absent),
        (
            "failed with a stale Ready=True",
            "Failed",
            Some(true),
            false,
            false,
            Absent,
        ),
        (
            "succeeded with a stale Ready=True",
            "Succeeded",
            Some(true),
            false,
            false,
            Absent,
        ),
        (
            "publish: running, not ready",
            "Running",
            Some(false),
            false,
            true,
            Ready,
        ),
        (
            "publish: running, not ready, deleting",
            "Running",
            Some(false),
            true,
            true,
            Ready,
        ),
        (
            "publish: unknown phase, not ready",
            "Unknown",
            Some(false),
            false,
            true,
            Ready,
        ),
        (
            "publish: unknown phase, not ready, deleting",
            "Unknown",
            Some(false),
            true,
            true,
            Ready,
        ),
        (
            "publish: pending, not ready",
            "Pending",
            Some(false),
            false,
            true,
            Ready,
        ),
        (
            "publish: pending, not ready, deleting",
            "Pending",
            Some(false),
            true,
            true,
            Ready,
        ),
        ("publish: no Ready condition", "Running", None, false, true, Ready),
        ("publish: failed", "Failed", Some(false), false, true, Absent),
        ("publish: succeeded", "Succeeded", Some(false), false, true, Absent),
    ];
    for (case, phase, ready, deleting, publish, want) in cases {
        let svc = web().port("", 80, 8080).publish_not_ready(publish).build();
        let mut p = pod(NS, "fakepod").phase(phase).ip("10.1.1.1");
        if let Some(ready) = ready {
            p = p.ready(ready);
        }
        if deleting {
            p = p.deleting();
        }
        let desired = desired_subsets(&svc, &[p.projection()]);
        let a = || vec![address("10.1.1.1", "fakepod", "")];
        let (expected, counts) = match want {
            Ready => (vec![subset(a(), vec![], vec![tcp("", 8080)])], (1, 0)),
            NotReady => (vec![subset(vec![], a(), vec![tcp("", 8080)])], (0, 1)),
            Absent => (vec![], (0, 0)),
        };
        assert_eq!(desired.subsets, expected, "{case}");
        assert_eq!((desired.ready, desired.not_ready), counts, "{case}");
    }
}

/// `TestSyncEndpointsItemsEmptySelectorSelectsAllMixed`,
/// `...SelectsAllNotReady`, scenario 06: ready and not-ready pods of one port
/// share a subset; a subset with no ready pod has no `addresses`.
#[test]
fn ready_and_not_ready_pods_of_one_port_share_a_subset() {
    let svc = web_http();
    let ready = pod(NS, "pod0").ip("1.2.3.4").ready(true).projection();
    let not_ready = pod(NS, "pod1").ip("1.2.3.5").ready(false).projection();
    let mixed = desired_subsets(&svc, [&ready, &not_ready]);
    assert_eq!(
        mixed.subsets,
        [subset(
            vec![address("1.2.3.4", "pod0", "")],
            vec![address("1.2.3.5", "pod1", "")],
            vec![tcp("http", 8080)]
        )]
    );
    assert_eq!((mixed.ready, mixed.not_ready), (1, 1));
    assert_eq!(
        desired_subsets(&svc, [&not_ready]).subsets,
        [subset(
            vec![],
            vec![address("1.2.3.5", "pod1", "")],
            vec![tcp("http", 8080)]
        )]
    );
}

/// Scenario 11 and spec E-10/E-12: a pod with no IP is skipped, not listed
/// as not ready; `status.podIP` alone (no `podIPs`) gives no address either.
#[test]
fn pods_without_pod_ips_are_left_out() {
    let svc = web_http();
    let pods = [
        pod(NS, "web-0")
            .ip("10.244.1.11")
            .node("node-a")
            .ready(true)
            .projection(),
        pod(NS, "web-1")
            .phase("Pending")
            .node("node-b")
            .ready(false)
            .projection(),
        pod(NS, "web-2")
            .legacy_pod_ip("10.244.3.13")
            .node("node-c")
            .ready(true)
            .projection(),
    ];
    assert_eq!(
        desired_subsets(&svc, &pods).subsets,
        [subset(
            vec![address("10.244.1.11", "web-0", "node-a")],
            vec![],
            vec![tcp("http", 8080)]
        )]
    );
}

/// Scenario 12: a named targetPort is resolved per pod, and pods resolving
/// it to different numbers land in different subsets.
#[test]
fn named_target_port_resolved_per_pod_splits_subsets() {
    let svc = web().named_port("http", 80, "http").build();
    let pods = [
        pod(NS, "v1-a")
            .ip("10.244.1.11")
            .node("node-a")
            .ready(true)
            .container_port("http", 8080, "TCP")
            .projection(),
        pod(NS, "v1-b")
            .ip("10.244.2.12")
            .node("node-b")
            .ready(true)
            .container_port("http", 8080, "TCP")
            .projection(),
        pod(NS, "v2-a")
            .ip("10.244.3.13")
            .node("node-c")
            .ready(true)
            .container_port("http", 9090, "TCP")
            .projection(),
    ];
    assert_eq!(
        desired_subsets(&svc, &pods).subsets,
        [
            subset(
                vec![
                    address("10.244.1.11", "v1-a", "node-a"),
                    address("10.244.2.12", "v1-b", "node-b")
                ],
                vec![],
                vec![tcp("http", 8080)],
            ),
            subset(
                vec![address("10.244.3.13", "v2-a", "node-c")],
                vec![],
                vec![tcp("http", 9090)]
            ),
        ]
    );
}

/// Scenario 13: a pod with no container port of the targetPort's name
/// serves nothing and appears nowhere, not even as not ready.
#[test]
fn pod_without_the_named_port_is_left_out() {
    let svc = web().named_port("http", 80, "http").build();
    let pods = [
        pod(NS, "web-0")
            .ip("10.244.1.11")
            .ready(true)
            .container_port("http", 8080, "TCP")
            .projection(),
        pod(NS, "legacy-0")
            .ip("10.244.2.12")
            .ready(true)
            .container_port("web", 8080, "TCP")
            .projection(),
        pod(NS, "legacy-1").ip("10.244.3.13").ready(false).projection(),
    ];
    let desired = desired_subsets(&svc, &pods);
    assert_eq!(
        desired.subsets,
        [subset(
            vec![address("10.244.1.11", "web-0", "")],
            vec![],
            vec![tcp("http", 8080)]
        )]
    );
    assert_eq!((desired.ready, desired.not_ready), (1, 0));
}

/// `FindPort` through `desired_subsets`: a named targetPort matches the
/// first container port (app containers in order) with that name AND the
/// Service port's protocol.
#[test]
fn named_target_port_matches_name_and_protocol_in_container_order() {
    let svc = web()
        .port_full("dns", 53, IntOrString::String("dns".to_owned()), "UDP")
        .port_full("dns-tcp", 53, IntOrString::String("dns".to_owned()), "TCP")
        .build();
    let pods = [pod(NS, "dns-0")
        .ip("10.0.0.53")
        .ready(true)
        .container_port("dns", 5353, "TCP")
        .extra_container_port("dns", 53, "UDP")
        .extra_container_port("dns", 54, "UDP")
        .projection()];
    assert_eq!(
        desired_subsets(&svc, &pods).subsets,
        [subset(
            vec![address("10.0.0.53", "dns-0", "")],
            vec![],
            vec![port("dns", 53, "UDP"), tcp("dns-tcp", 5353)]
        )]
    );
}

/// Spec E-16 (PR 127976, 1.32+): named ports of native sidecars
/// (`initContainers` with `restartPolicy: Always`) resolve; those of ordinary
/// init containers never do.
#[test]
fn native_sidecar_ports_resolve_named_target_ports_but_init_container_ports_do_not() {
    let svc = web().named_port("metrics", 9100, "metrics").build();
    let pods = [
        pod(NS, "sidecar")
            .ip("10.0.0.1")
            .ready(true)
            .init_container_port("metrics", 9100, "TCP", true)
            .projection(),
        pod(NS, "init")
            .ip("10.0.0.2")
            .ready(true)
            .init_container_port("metrics", 9100, "TCP", false)
            .projection(),
    ];
    assert_eq!(
        desired_subsets(&svc, &pods).subsets,
        [subset(
            vec![address("10.0.0.1", "sidecar", "")],
            vec![],
            vec![tcp("metrics", 9100)]
        )]
    );
}

/// Scenario 15 (RepackSubsets): web-a/web-b serve http and metrics, web-c
/// only http, and every pod serves the numeric admin port, so a and b
/// appear in two subsets: {a,b,c} × [admin, http] and {a,b} × [metrics].
#[test]
fn pods_serving_different_port_sets_appear_in_several_subsets() {
    let svc = web()
        .named_port("http", 80, "http")
        .named_port("metrics", 9100, "metrics")
        .port("admin", 9999, 9999)
        .build();
    let both = |name: &str, ip: &str, node: &str| {
        pod(NS, name)
            .ip(ip)
            .node(node)
            .ready(true)
            .container_port("http", 8080, "TCP")
            .container_port("metrics", 9100, "TCP")
            .projection()
    };
    let pods = [
        both("web-a", "10.244.1.11", "node-a"),
        both("web-b", "10.244.2.12", "node-b"),
        pod(NS, "web-c")
            .ip("10.244.3.13")
            .node("node-c")
            .ready(true)
            .container_port("http", 8080, "TCP")
            .projection(),
    ];
    let a = || address("10.244.1.11", "web-a", "node-a");
    let b = || address("10.244.2.12", "web-b", "node-b");
    let desired = desired_subsets(&svc, &pods);
    assert_eq!(
        desired.subsets,
        [
            subset(
                vec![a(), b(), address("10.244.3.13", "web-c", "node-c")],
                vec![],
                vec![tcp("admin", 9999), tcp("http", 8080)],
            ),
            subset(vec![a(), b()], vec![], vec![tcp("metrics", 9100)]),
        ]
    );
    assert_eq!((desired.ready, desired.not_ready), (8, 0));
}

/// `TestEndpointPortFromServicePort`, scenario 17: an endpoint port copies
/// name, protocol and appProtocol (absent stays absent) from the Service
/// port; its number is the resolved targetPort, never `port` or `nodePort`,
/// and NodePort Services are handled like ClusterIP ones.
#[test]
fn app_protocol_is_copied_and_the_number_is_the_target_port() {
    let mut svc = service(NS, "grpc")
        .type_("NodePort")
        .port("grpc", 9000, 9000)
        .app_protocol("kubernetes.io/h2c")
        .port("web", 80, 8080)
        .build();
    for (service_port, node_port) in svc
        .spec
        .as_mut()
        .unwrap()
        .ports
        .as_mut()
        .unwrap()
        .iter_mut()
        .zip([30900, 30080])
    {
        service_port.node_port = Some(node_port);
    }
    let pods = [pod(NS, "grpc-0")
        .ip("10.244.1.61")
        .node("node-a")
        .ready(true)
        .projection()];
    let grpc = EndpointPort {
        app_protocol: Some("kubernetes.io/h2c".to_owned()),
        ..tcp("grpc", 9000)
    };
    assert_eq!(
        desired_subsets(&svc, &pods).subsets,
        [subset(
            vec![address("10.244.1.61", "grpc-0", "node-a")],
            vec![],
            vec![grpc, tcp("web", 8080)]
        )]
    );
}

/// `TestSyncEndpointsHeadlessWithoutPort`, `TestSyncEndpointsHeadlessService`,
/// scenario 04: a headless Service without ports lists its pods in one
/// subset without ports, ready and not ready alike.
#[test]
fn headless_service_without_ports_lists_pods_without_ports() {
    let svc = web().headless().build();
    let pods = [
        pod(NS, "disco-0")
            .ip("10.244.1.31")
            .node("node-a")
            .ready(true)
            .projection(),
        pod(NS, "disco-1")
            .ip("10.244.2.32")
            .node("node-b")
            .ready(false)
            .projection(),
    ];
    let desired = desired_subsets(&svc, &pods);
    assert_eq!(
        desired.subsets,
        [subset(
            vec![address("10.244.1.31", "disco-0", "node-a")],
            vec![address("10.244.2.32", "disco-1", "node-b")],
            vec![]
        )]
    );
    assert_eq!((desired.ready, desired.not_ready), (1, 1));
}

/// Spec §4.4: without ports only a Service whose clusterIP is exactly
/// `None` lists pods; any other port-less Service gets none.
#[test]
fn service_without_ports_and_not_headless_gets_no_addresses() {
    let pods = [pod(NS, "pod0").ip("1.2.3.4").ready(true).projection()];
    for cluster_ip in ["10.96.0.10", ""] {
        let svc = web().cluster_ip(cluster_ip).build();
        assert_eq!(
            desired_subsets(&svc, &pods),
            DesiredSubsets::default(),
            "clusterIP {cluster_ip:?}"
        );
    }
}

/// Scenarios 20 and 21, `TestPodToEndpointAddressForService`: addresses are
/// of `spec.ipFamilies[0]` only, also for dual-stack Services; a pod with no
/// IP of that family is left out.
#[test]
fn addresses_are_of_the_primary_service_family_only() {
    let dual = pod(NS, "ds-a")
        .ips(&["10.244.1.5", "fd00:10:244:1::5"])
        .node("node-a")
        .ready(true)
        .projection();
    let v4_only = pod(NS, "v4only")
        .ip("10.244.2.7")
        .node("node-b")
        .ready(true)
        .projection();
    let v6_ready = pod(NS, "web6-0")
        .ip("fd00:10:244:1::b")
        .node("node-a")
        .ready(true)
        .projection();
    let v6_not_ready = pod(NS, "web6-1")
        .ip("fd00:10:244:2::c")
        .node("node-b")
        .ready(false)
        .projection();
    let http = || vec![tcp("http", 8080)];

    let v6 = web()
        .cluster_ip("fd00:10:96::a")
        .ip_families(&["IPv6"])
        .port("http", 80, 8080)
        .build();
    assert_eq!(
        desired_subsets(&v6, [&v6_ready, &v6_not_ready, &v4_only]).subsets,
        [subset(
            vec![address("fd00:10:244:1::b", "web6-0", "node-a")],
            vec![address("fd00:10:244:2::c", "web6-1", "node-b")],
            http(),
        )],
        "IPv6 single stack"
    );
    let v4_first = web()
        .cluster_ip("10.96.0.70")
        .ip_families(&["IPv4", "IPv6"])
        .port("http", 80, 8080)
        .build();
    assert_eq!(
        desired_subsets(&v4_first, [&dual, &v4_only]).subsets,
        [subset(
            vec![
                address("10.244.1.5", "ds-a", "node-a"),
                address("10.244.2.7", "v4only", "node-b")
            ],
            vec![],
            http()
        )],
        "dual stack, IPv4 first"
    );
    let v6_first = web()
        .cluster_ip("fd00:10:96::71")
        .ip_families(&["IPv6", "IPv4"])
        .port("http", 80, 8080)
        .build();
    assert_eq!(
        desired_subsets(&v6_first, [&dual, &v4_only]).subsets,
        [subset(
            vec![address("fd00:10:244:1::5", "ds-a", "node-a")],
            vec![],
            http()
        )],
        "dual stack, IPv6 first"
    );
}

/// Scenario 23 (upgrade fallback): a headless Service without `ipFamilies`
/// takes the family of each pod's `status.podIP`, so one object may mix
/// families.
#[test]
fn legacy_headless_service_without_families_takes_each_pods_primary_family() {
    let svc = web().headless().ip_families(&[]).port("http", 80, 8080).build();
    let pods = [
        pod(NS, "hl-a")
            .ips(&["10.244.1.5", "fd00:10:244:1::5"])
            .node("node-a")
            .ready(true)
            .projection(),
        pod(NS, "hl-b")
            .ips(&["fd00:10:244:2::6", "10.244.2.6"])
            .node("node-b")
            .ready(true)
            .projection(),
    ];
    assert_eq!(
        desired_subsets(&svc, &pods).subsets,
        [subset(
            vec![
                address("10.244.1.5", "hl-a", "node-a"),
                address("fd00:10:244:2::6", "hl-b", "node-b")
            ],
            vec![],
            vec![tcp("http", 8080)],
        )]
    );
}

/// Spec E-13: the hostname is set when the pod has one and its subdomain is
/// the Service's name — for any Service, not only headless ones.
#[test]
fn hostname_is_set_only_when_the_pod_subdomain_names_the_service() {
    let svc = web_http();
    let pods = [
        pod(NS, "a")
            .ip("10.0.0.1")
            .ready(true)
            .hostname("a")
            .subdomain("web")
            .projection(),
        pod(NS, "b")
            .ip("10.0.0.2")
            .ready(true)
            .hostname("b")
            .subdomain("other")
            .projection(),
        pod(NS, "c").ip("10.0.0.3").ready(true).hostname("c").projection(),
        pod(NS, "d").ip("10.0.0.4").ready(true).subdomain("web").projection(),
    ];
    assert_eq!(
        desired_subsets(&svc, &pods).subsets,
        [subset(
            vec![
                with_hostname(address("10.0.0.1", "a", ""), "a"),
                address("10.0.0.2", "b", ""),
                address("10.0.0.3", "c", ""),
                address("10.0.0.4", "d", ""),
            ],
            vec![],
            vec![tcp("http", 8080)],
        )]
    );
}

/// Scenario 10: with `publishNotReadyAddresses` every non-terminal pod with
/// an IP is a ready address, unready and terminating ones included; failed
/// pods and pods without IP stay out; hostnames follow the subdomain.
#[test]
fn publish_not_ready_addresses_lists_unready_and_terminating_pods_as_ready() {
    let svc = service(NS, "zk-hs")
        .headless()
        .publish_not_ready(true)
        .port("peer", 2888, 2888)
        .port("election", 3888, 3888)
        .build();
    let zk = |i: u8, node: &str| {
        pod(NS, &format!("zk-{i}"))
            .hostname(&format!("zk-{i}"))
            .subdomain("zk-hs")
            .node(node)
    };
    let pods = [
        zk(0, "node-a").ip("10.244.1.41").ready(true).projection(),
        zk(1, "node-b").ip("10.244.2.42").ready(false).projection(),
        zk(2, "node-c").ip("10.244.3.43").ready(false).deleting().projection(),
        zk(3, "node-a")
            .ip("10.244.1.44")
            .ready(false)
            .phase("Failed")
            .projection(),
        zk(4, "node-b").ready(false).phase("Pending").projection(),
    ];
    let desired = desired_subsets(&svc, &pods);
    assert_eq!(
        desired.subsets,
        [subset(
            vec![
                with_hostname(address("10.244.1.41", "zk-0", "node-a"), "zk-0"),
                with_hostname(address("10.244.2.42", "zk-1", "node-b"), "zk-1"),
                with_hostname(address("10.244.3.43", "zk-2", "node-c"), "zk-2"),
            ],
            vec![],
            vec![tcp("election", 3888), tcp("peer", 2888)],
        )]
    );
    assert_eq!((desired.ready, desired.not_ready), (6, 0));
}

/// Newest `TestPodToEndpointAddressForService` (`addBadIPPod`), PR 130101
/// (KEP-4858, 1.33+): IPs are written canonicalised even when the pod status
/// holds an invalid-but-parseable form.
#[test]
#[ignore = "disagrees with upstream: 1.33+ writes pod IPs canonicalised (PR 130101); ecm and spec E-12 copy them verbatim"]
fn pod_ips_are_written_in_canonical_form() {
    let v4 = web_http();
    let pods = [pod(NS, "pod0").ip("01.2.3.4").ready(true).projection()];
    assert_eq!(
        desired_subsets(&v4, &pods).subsets,
        [subset(
            vec![address("1.2.3.4", "pod0", "")],
            vec![],
            vec![tcp("http", 8080)]
        )]
    );
    let v6 = web()
        .cluster_ip("fd00::a")
        .ip_families(&["IPv6"])
        .port("http", 80, 8080)
        .build();
    let pods = [pod(NS, "pod1").ip("FD00::0001").ready(true).projection()];
    assert_eq!(
        desired_subsets(&v6, &pods).subsets,
        [subset(
            vec![address("fd00::1", "pod1", "")],
            vec![],
            vec![tcp("http", 8080)]
        )]
    );
}

// ------------------------------------------------------- labels_correct

/// Spec §6.2.2 (v1.36 `labelsCorrectForEndpoints`).
#[test]
fn labels_are_correct_with_managed_by_and_the_service_labels_headless_aside() {
    let app = &[("app", "web")][..];
    // (case, stored labels (None: unset), Service labels (None: unset), correct)
    let cases: [(&str, Option<&[(&str, &str)]>, Option<&[(&str, &str)]>, bool); 12] = [
        ("nothing stored, no service labels", None, None, false),
        ("managed-by only, no service labels", Some(&[MANAGED_BY]), None, true),
        (
            "managed-by only, empty service labels",
            Some(&[MANAGED_BY]),
            Some(&[]),
            true,
        ),
        (
            "managed-by and a headless label",
            Some(&[MANAGED_BY, HEADLESS]),
            None,
            true,
        ),
        (
            "managed-by and service labels",
            Some(&[MANAGED_BY, ("app", "web")]),
            Some(app),
            true,
        ),
        ("service labels, no managed-by", Some(app), Some(app), false),
        (
            "managed-by of another controller",
            Some(&[(LABEL_ENDPOINTS_MANAGED_BY, "someone"), ("app", "web")]),
            Some(app),
            false,
        ),
        ("a service label missing", Some(&[MANAGED_BY]), Some(app), false),
        (
            "a label the service lacks",
            Some(&[MANAGED_BY, ("app", "web"), ("extra", "x")]),
            Some(app),
            false,
        ),
        (
            "a service label value differs",
            Some(&[MANAGED_BY, ("app", "old")]),
            Some(app),
            false,
        ),
        (
            "headless label on both sides",
            Some(&[MANAGED_BY, HEADLESS]),
            Some(&[HEADLESS]),
            false,
        ),
        ("empty stored map", Some(&[]), None, false),
    ];
    for (case, stored, service_labels, want) in cases {
        let stored = stored.map(label_map);
        let service_labels = service_labels.map(label_map);
        assert_eq!(labels_correct(stored.as_ref(), service_labels.as_ref()), want, "{case}");
    }
}

// ----------------------------------------------------------------- plan

/// `TestSyncEndpointsItems` / `...WithLabels` (POST), scenario 01: a new
/// Endpoints carries the Service labels plus managed-by, and on a first sync
/// the trigger time is the Service's creation time.
#[test]
fn new_service_creates_endpoints_with_service_labels_managed_by_and_trigger_time() {
    let svc = web_http();
    let pods = [pod(NS, "web-0")
        .ip("10.244.1.11")
        .node("node-a")
        .ready(true)
        .projection()];
    let subsets = vec![subset(
        vec![address("10.244.1.11", "web-0", "node-a")],
        vec![],
        vec![tcp("http", 8080)],
    )];
    assert_eq!(
        plan(None, &svc, desired_subsets(&svc, &pods).subsets, Some(at(0))),
        Plan::Create(Endpoints {
            metadata: ObjectMeta {
                name: Some("web".to_owned()),
                namespace: Some(NS.to_owned()),
                labels: Some(label_map(&[("app", "web"), MANAGED_BY])),
                annotations: annotations(&[(ANNOTATION_LAST_CHANGE_TRIGGER_TIME, AT_0)]),
                ..ObjectMeta::default()
            },
            subsets: Some(subsets),
        })
    );
}

/// `TestSyncEndpointsNewNoSubsets`, scenario 37: a Service selecting no pod
/// still gets an (empty) Endpoints object.
#[test]
fn new_service_without_pods_creates_empty_endpoints() {
    let svc = web_http();
    let desired = desired_subsets(&svc, []);
    assert_eq!(
        plan(None, &svc, desired.subsets, Some(at(0))),
        Plan::Create(Endpoints {
            metadata: ObjectMeta {
                name: Some("web".to_owned()),
                namespace: Some(NS.to_owned()),
                labels: Some(label_map(&[("app", "web"), MANAGED_BY])),
                annotations: annotations(&[(ANNOTATION_LAST_CHANGE_TRIGGER_TIME, AT_0)]),
                ..ObjectMeta::default()
            },
            subsets: Some(vec![]),
        })
    );
}

fn two_ready_web_pods() -> [PodProjection; 2] {
    [
        pod(NS, "web-0")
            .ip("10.244.1.11")
            .node("node-a")
            .ready(true)
            .projection(),
        pod(NS, "web-1")
            .ip("10.244.2.12")
            .node("node-b")
            .ready(true)
            .projection(),
    ]
}

fn two_ready_web_subsets() -> Vec<EndpointSubset> {
    vec![subset(
        vec![
            address("10.244.1.11", "web-0", "node-a"),
            address("10.244.2.12", "web-1", "node-b"),
        ],
        vec![],
        vec![tcp("http", 8080)],
    )]
}

/// `TestSyncEndpointsItemsPreexistingIdentical`,
/// `TestSyncEndpointsWithPodResourceVersionUpdateOnly`, scenario 28: stored
/// subsets equal to the desired ones (target resourceVersions aside), right
/// labels and no over-capacity annotation → nothing to write; a new trigger
/// time alone never causes a write.
#[test]
fn stored_endpoints_equal_to_the_desired_ones_are_unchanged() {
    let svc = web_http();
    let mut current = stored(&[("app", "web"), MANAGED_BY], Some(two_ready_web_subsets()));
    current.metadata.annotations = annotations(&[(ANNOTATION_LAST_CHANGE_TRIGGER_TIME, "2023-11-02T08:00:00Z")]);
    for s in current.subsets.iter_mut().flatten() {
        for a in s.addresses.iter_mut().flatten() {
            a.target_ref.as_mut().unwrap().resource_version = Some("4242".to_owned());
        }
    }
    let desired = desired_subsets(&svc, &two_ready_web_pods());
    assert_eq!(
        plan(Some(&current), &svc, desired.subsets, Some(at(60))),
        Plan::Unchanged
    );
}

/// `TestSyncEndpointsExistingNilSubsets`, `...ExistingEmptySubsets`,
/// scenario 36: absent and empty stored subsets both equal "no pods".
#[test]
fn absent_or_empty_stored_subsets_equal_no_pods() {
    let svc = web_http();
    for subsets in [None, Some(vec![])] {
        let current = stored(&[("app", "web"), MANAGED_BY], subsets.clone());
        assert_eq!(
            plan(Some(&current), &svc, desired_subsets(&svc, []).subsets, Some(at(0))),
            Plan::Unchanged,
            "{subsets:?}"
        );
    }
}

/// Spec §6.2.2 (v1.36): an object written before the managed-by label
/// existed (or by hand) is updated once to add it, then left alone.
#[test]
fn stored_endpoints_without_the_managed_by_label_are_updated_once() {
    let svc = web_http();
    let current = stored(&[("app", "web")], Some(two_ready_web_subsets()));
    let desired = desired_subsets(&svc, &two_ready_web_pods()).subsets;
    let mut expected = current.clone();
    expected.metadata.labels = Some(label_map(&[("app", "web"), MANAGED_BY]));
    assert_eq!(
        plan(Some(&current), &svc, desired.clone(), None),
        Plan::Update(expected.clone())
    );
    assert_eq!(plan(Some(&expected), &svc, desired, None), Plan::Unchanged);
}

/// `TestSyncEndpointsItemsPreexistingLabelsChange`, scenario 30: a label
/// change alone updates the object, whose labels become exactly the
/// Service's plus managed-by.
#[test]
fn service_label_change_alone_updates_the_labels() {
    let svc = web()
        .labels([("app", "web"), ("version", "v2")])
        .port("http", 80, 8080)
        .build();
    let current = stored(
        &[("app", "web"), ("version", "v1"), MANAGED_BY],
        Some(two_ready_web_subsets()),
    );
    let mut expected = current.clone();
    expected.metadata.labels = Some(label_map(&[("app", "web"), ("version", "v2"), MANAGED_BY]));
    expected.metadata.annotations = annotations(&[(ANNOTATION_LAST_CHANGE_TRIGGER_TIME, AT_0)]);
    let desired = desired_subsets(&svc, &two_ready_web_pods()).subsets;
    assert_eq!(plan(Some(&current), &svc, desired, Some(at(0))), Plan::Update(expected));
}

/// `TestSyncEndpointsItemsExcludeNotReadyPodsWithRestartPolicy*`: stored
/// labels the Service does not have force an update even when the subsets
/// are equal (both empty: the only pod is terminal); the Service has no
/// cluster IP, so the object is labelled headless.
#[test]
fn stale_stored_labels_force_an_update_even_with_equal_subsets() {
    let svc = service(NS, "foo")
        .selector([("foo", "bar")])
        .cluster_ip("")
        .port("", 80, 8080)
        .build();
    let failed = pod(NS, "pod0").ip("1.2.3.4").phase("Failed").ready(false).projection();
    let desired = desired_subsets(&svc, [&failed]).subsets;
    assert_eq!(desired, []);
    for labels in [&[("foo", "bar")][..], &[MANAGED_BY, ("foo", "bar")]] {
        let mut current = stored(labels, Some(vec![]));
        current.metadata.name = Some("foo".to_owned());
        let mut expected = current.clone();
        expected.metadata.labels = Some(label_map(&[HEADLESS, MANAGED_BY]));
        assert_eq!(
            plan(Some(&current), &svc, desired.clone(), None),
            Plan::Update(expected),
            "{labels:?}"
        );
    }
}

/// Scenario 31, `TestSyncEndpointsItemsPreexisting`: an update starts from
/// the stored object — identity, resourceVersion and unrelated annotations
/// are kept — replaces the subsets, sets the labels to the Service's plus
/// managed-by (stored extras vanish) and rewrites the trigger time.
#[test]
fn update_replaces_subsets_and_labels_and_keeps_other_metadata() {
    let svc = web_http();
    let mut current = stored(
        &[("app", "web"), ("owner", "manual")],
        Some(vec![subset(
            vec![EndpointAddress {
                ip: "10.244.9.9".to_owned(),
                ..EndpointAddress::default()
            }],
            vec![],
            vec![EndpointPort {
                port: 1000,
                protocol: Some("TCP".to_owned()),
                ..EndpointPort::default()
            }],
        )]),
    );
    current.metadata.annotations = annotations(&[
        ("example.com/note", "keep-me"),
        (ANNOTATION_LAST_CHANGE_TRIGGER_TIME, "2023-01-01T00:00:00Z"),
    ]);
    current.metadata.finalizers = Some(vec!["example.com/keep".to_owned()]);
    let mut expected = current.clone();
    expected.metadata.labels = Some(label_map(&[("app", "web"), MANAGED_BY]));
    expected.metadata.annotations = annotations(&[
        ("example.com/note", "keep-me"),
        (ANNOTATION_LAST_CHANGE_TRIGGER_TIME, AT_0),
    ]);
    expected.subsets = Some(two_ready_web_subsets());
    let desired = desired_subsets(&svc, &two_ready_web_pods()).subsets;
    assert_eq!(plan(Some(&current), &svc, desired, Some(at(0))), Plan::Update(expected));
}

/// `TestLastTriggerChangeTimeAnnotation`, `..._AnnotationOverridden`,
/// `..._AnnotationCleared`: a written object carries the trigger time in UTC
/// RFC 3339 with only the fractional digits needed, or no annotation when
/// the sync has none.
#[test]
fn trigger_time_annotation_is_set_overridden_or_cleared() {
    let svc = web_http();
    let pods = [pod(NS, "pod0").ip("1.2.3.4").ready(true).projection()];
    let fraction = at(0).checked_add(SignedDuration::from_millis(120)).unwrap();
    // (case, stored annotation, trigger, written annotation)
    let cases = [
        ("set", None, Some(at(0)), Some(AT_0)),
        ("overridden", Some("2024-01-15T09:00:00Z"), Some(at(0)), Some(AT_0)),
        ("cleared", Some(AT_0), None, None),
        ("absent stays absent", None, None, None),
        (
            "fractional seconds",
            None,
            Some(fraction),
            Some("2024-01-15T10:00:00.12Z"),
        ),
    ];
    for (case, before, trigger, after) in cases {
        let mut current = stored(
            &[HEADLESS, MANAGED_BY],
            Some(vec![subset(
                vec![EndpointAddress {
                    ip: "6.7.8.9".to_owned(),
                    node_name: Some(String::new()),
                    ..EndpointAddress::default()
                }],
                vec![],
                vec![EndpointPort {
                    port: 1000,
                    protocol: Some("TCP".to_owned()),
                    ..EndpointPort::default()
                }],
            )]),
        );
        current.metadata.annotations = before.and_then(|t| annotations(&[(ANNOTATION_LAST_CHANGE_TRIGGER_TIME, t)]));
        let mut expected = current.clone();
        expected.metadata.labels = Some(label_map(&[("app", "web"), MANAGED_BY]));
        expected.metadata.annotations = after.and_then(|t| annotations(&[(ANNOTATION_LAST_CHANGE_TRIGGER_TIME, t)]));
        expected.subsets = Some(vec![subset(
            vec![address("1.2.3.4", "pod0", "")],
            vec![],
            vec![tcp("http", 8080)],
        )]);
        assert_eq!(
            plan(Some(&current), &svc, desired_subsets(&svc, &pods).subsets, trigger),
            Plan::Update(expected),
            "{case}"
        );
    }
}

/// `TestSyncEndpointsHeadlessService`, `TestSyncEndpointsProtocol*`,
/// scenario 03: a written object is labelled headless exactly when the
/// Service has no cluster IP (`None` or empty), also removing the label a
/// Service with a cluster IP carries itself.
#[test]
fn headless_label_follows_the_cluster_ip() {
    // (cluster IP, Service labels, written labels)
    let cases: [(&str, &[(&str, &str)], &[(&str, &str)]); 4] = [
        ("None", &[("a", "b")], &[("a", "b"), HEADLESS, MANAGED_BY]),
        ("", &[], &[HEADLESS, MANAGED_BY]),
        ("10.96.0.10", &[("a", "b")], &[("a", "b"), MANAGED_BY]),
        ("10.96.0.10", &[("a", "b"), HEADLESS], &[("a", "b"), MANAGED_BY]),
    ];
    for (cluster_ip, service_labels, want) in cases {
        let svc = web()
            .labels(service_labels.iter().copied())
            .cluster_ip(cluster_ip)
            .build();
        let Plan::Create(created) = plan(None, &svc, vec![], None) else {
            panic!("expected a create for clusterIP {cluster_ip:?}");
        };
        assert_eq!(
            created.metadata.labels,
            Some(label_map(want)),
            "clusterIP {cluster_ip:?}, labels {service_labels:?}"
        );
    }
}

/// `TestSyncEndpointsHeadlessServiceLabel`, spec §11.2: the headless label
/// is never compared, so a stale or missing one alone causes no write.
#[test]
fn wrong_headless_label_alone_is_not_corrected() {
    let cluster_ip = web().build();
    let stale = stored(&[("app", "web"), HEADLESS, MANAGED_BY], Some(vec![]));
    assert_eq!(
        plan(Some(&stale), &cluster_ip, vec![], None),
        Plan::Unchanged,
        "stale headless label"
    );
    let headless = web().headless().build();
    let missing = stored(&[("app", "web"), MANAGED_BY], Some(vec![]));
    assert_eq!(
        plan(Some(&missing), &headless, vec![], None),
        Plan::Unchanged,
        "missing headless label"
    );
}

/// Spec §6.2.1 (v1.36, issue 129652): stored subsets in another order — as
/// another release's hash order leaves them — or not packed at all repack
/// to the desired ones and cause no write.
#[test]
fn stored_subsets_in_another_order_are_unchanged() {
    let svc = web()
        .named_port("http", 80, "http")
        .named_port("metrics", 9100, "metrics")
        .port("admin", 9999, 9999)
        .build();
    let full = |name: &str, ip: &str| {
        pod(NS, name)
            .ip(ip)
            .ready(true)
            .container_port("http", 8080, "TCP")
            .container_port("metrics", 9100, "TCP")
            .projection()
    };
    let pods = [
        full("web-a", "10.244.1.11"),
        full("web-b", "10.244.2.12"),
        pod(NS, "web-c")
            .ip("10.244.3.13")
            .ready(false)
            .container_port("http", 8080, "TCP")
            .projection(),
    ];
    let desired = desired_subsets(&svc, &pods).subsets;
    let a = || address("10.244.1.11", "web-a", "");
    let b = || address("10.244.2.12", "web-b", "");
    let c = || address("10.244.3.13", "web-c", "");
    let reordered = vec![
        subset(vec![b(), a()], vec![], vec![tcp("metrics", 9100)]),
        subset(vec![b(), a()], vec![c()], vec![tcp("http", 8080), tcp("admin", 9999)]),
    ];
    let unpacked = vec![
        subset(
            vec![a()],
            vec![],
            vec![tcp("http", 8080), tcp("metrics", 9100), tcp("admin", 9999)],
        ),
        subset(vec![], vec![c()], vec![tcp("admin", 9999), tcp("http", 8080)]),
        subset(
            vec![b()],
            vec![],
            vec![tcp("admin", 9999), tcp("metrics", 9100), tcp("http", 8080)],
        ),
    ];
    assert_ne!(
        reordered, desired,
        "the stored order must differ for this test to mean anything"
    );
    for (case, subsets) in [("reordered", reordered), ("unpacked", unpacked)] {
        let current = stored(&[("app", "web"), MANAGED_BY], Some(subsets));
        assert_eq!(
            plan(Some(&current), &svc, desired.clone(), Some(at(0))),
            Plan::Unchanged,
            "{case}"
        );
    }
}

// ------------------------------------------------------------- capacity

/// Pod `i` of a large Service: every octet has three digits, so IP byte
/// order is pod order.
fn nth_ip(i: usize) -> String {
    format!("10.1.{}.{}", 100 + i / 100, 100 + i % 100)
}

fn nth_name(i: usize) -> String {
    format!("web-{i:04}")
}

fn many_pods(ready: usize, not_ready: usize) -> Vec<PodProjection> {
    (0..ready + not_ready)
        .map(|i| pod(NS, &nth_name(i)).ip(&nth_ip(i)).ready(i < ready).projection())
        .collect()
}

fn nth_addresses(range: std::ops::Range<usize>) -> Vec<EndpointAddress> {
    range.map(|i| address(&nth_ip(i), &nth_name(i), "")).collect()
}

/// `plan` with every empty address list of the written subsets made absent.
/// Truncating all not-ready addresses away leaves an empty list where
/// packing leaves none; the API treats both alike, so the capacity tests do
/// not pin either form.
fn empty_lists_absent(plan: Plan) -> Plan {
    let fix = |mut object: Endpoints| {
        for s in object.subsets.iter_mut().flatten() {
            for list in [&mut s.addresses, &mut s.not_ready_addresses] {
                if list.as_ref().is_some_and(Vec::is_empty) {
                    *list = None;
                }
            }
        }
        object
    };
    match plan {
        Plan::Update(object) => Plan::Update(fix(object)),
        Plan::Create(object) => Plan::Create(fix(object)),
        Plan::Unchanged => Plan::Unchanged,
    }
}

/// `TestSyncServiceOverCapacity` (every row): at most 1000 addresses are
/// written, ready ones first; `over-capacity: truncated` is set when
/// addresses were cut and removed otherwise, whatever value (`warning` from
/// older releases, anything else) it had.
#[test]
fn over_capacity_truncates_and_sets_the_annotation() {
    let svc = web_http();
    // (case, stored ready addresses, stored annotation, desired ready, desired not ready,
    //  written ready, written not ready, written annotation; None written = Unchanged)
    type Case = (
        &'static str,
        usize,
        Option<&'static str>,
        usize,
        usize,
        Option<(usize, usize, bool)>,
    );
    let cases: [Case; 8] = [
        ("empty", 0, None, 0, 0, None),
        (
            "added past capacity, ready below it",
            999,
            None,
            997,
            4,
            Some((997, 3, true)),
        ),
        (
            "added past capacity, ready at it",
            999,
            None,
            1000,
            10,
            Some((1000, 0, true)),
        ),
        (
            "removed below capacity",
            999,
            Some("truncated"),
            999,
            0,
            Some((999, 0, false)),
        ),
        (
            "old warning removed at capacity",
            1000,
            Some("warning"),
            1000,
            0,
            Some((1000, 0, false)),
        ),
        (
            "old warning replaced over capacity",
            1001,
            Some("warning"),
            1001,
            0,
            Some((1000, 0, true)),
        ),
        (
            "removed at capacity",
            1000,
            Some("truncated"),
            1000,
            0,
            Some((1000, 0, false)),
        ),
        (
            "invalid value corrected, same endpoints",
            1001,
            Some("invalid"),
            1001,
            0,
            Some((1000, 0, true)),
        ),
    ];
    for (case, existing, before, ready, not_ready, written) in cases {
        let existing = if existing == 0 {
            vec![]
        } else {
            vec![subset(nth_addresses(0..existing), vec![], vec![tcp("http", 8080)])]
        };
        let mut current = stored(&[("app", "web"), MANAGED_BY], Some(existing));
        current.metadata.annotations = before.and_then(|value| annotations(&[(ANNOTATION_OVER_CAPACITY, value)]));
        let desired = desired_subsets(&svc, &many_pods(ready, not_ready)).subsets;
        let got = empty_lists_absent(plan(Some(&current), &svc, desired, None));
        let Some((written_ready, written_not_ready, truncated)) = written else {
            assert_eq!(got, Plan::Unchanged, "{case}");
            continue;
        };
        let mut expected = current.clone();
        expected.subsets = Some(vec![subset(
            nth_addresses(0..written_ready),
            nth_addresses(ready..ready + written_not_ready),
            vec![tcp("http", 8080)],
        )]);
        expected.metadata.annotations = if truncated {
            annotations(&[(ANNOTATION_OVER_CAPACITY, OVER_CAPACITY_TRUNCATED)])
        } else {
            None
        };
        assert_eq!(got, Plan::Update(expected), "{case}");
    }
}

/// Spec E-19.3 / §11.7, scenario 33: the stored copy of a truncated object
/// never looks right, so an over-capacity Service is rewritten, with the
/// same content, on every sync.
#[test]
fn over_capacity_endpoints_are_rewritten_on_every_sync() {
    let svc = web_http();
    let desired = desired_subsets(&svc, &many_pods(1001, 0)).subsets;
    let Plan::Create(mut written) = plan(None, &svc, desired.clone(), None) else {
        panic!("expected a create");
    };
    assert_eq!(
        written.subsets,
        Some(vec![subset(nth_addresses(0..1000), vec![], vec![tcp("http", 8080)])])
    );
    assert_eq!(
        written.metadata.annotations,
        annotations(&[(ANNOTATION_OVER_CAPACITY, OVER_CAPACITY_TRUNCATED)])
    );
    written.metadata.resource_version = Some("8".to_owned());
    assert_eq!(plan(Some(&written), &svc, desired, None), Plan::Update(written.clone()));
}
