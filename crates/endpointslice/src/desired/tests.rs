//! Upstream's `TestSupportedServiceAddressType`, `TestPodToEndpoint` and
//! `TestGetEndpointPorts`, plus the desired-state rules of
//! `reconcileByAddressType`, in our own data.

use super::*;
use crate::test_support::{lookup, node, tcp_port};
use ecm_types::fixtures::{pod, service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

fn families(list: &[IpFamily]) -> BTreeSet<IpFamily> {
    list.iter().copied().collect()
}

#[test]
fn address_types_follow_ip_families_with_legacy_fallbacks() {
    use IpFamily::{V4, V6};
    let cases = [
        ("v4 service", service("ns", "s").build(), vec![V4]),
        (
            "v6 service",
            service("ns", "s").ip_families(&["IPv6"]).build(),
            vec![V6],
        ),
        (
            "dual stack, IPv6 first",
            service("ns", "s").ip_families(&["IPv6", "IPv4"]).build(),
            vec![V4, V6],
        ),
        (
            "no families, IPv4 cluster IP (old API server)",
            service("ns", "s").ip_families(&[]).cluster_ip("10.0.0.10").build(),
            vec![V4],
        ),
        (
            "no families, IPv6 cluster IP (old API server)",
            service("ns", "s").ip_families(&[]).cluster_ip("2000::1").build(),
            vec![V6],
        ),
        (
            "no families, headless (old API server)",
            service("ns", "s").ip_families(&[]).headless().build(),
            vec![V4, V6],
        ),
        (
            "no families, no cluster IP",
            service("ns", "s").ip_families(&[]).cluster_ip("").build(),
            vec![V4, V6],
        ),
        (
            "headless with families",
            service("ns", "s").headless().ip_families(&["IPv4", "IPv6"]).build(),
            vec![V4, V6],
        ),
    ];
    for (name, svc, want) in cases {
        assert_eq!(address_types(&svc), families(&want), "{name}");
    }
}

fn zoned_node() -> Node {
    node("node-1", Some("zone-a"), "1")
}

fn expected(ip: &str, ready: bool, serving: bool, terminating: bool) -> Endpoint {
    Endpoint {
        addresses: vec![ip.to_owned()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        node_name: Some("node-1".to_owned()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".to_owned()),
            namespace: Some("ns".to_owned()),
            name: Some("p".to_owned()),
            uid: Some("uid-p".to_owned()),
            ..ObjectReference::default()
        }),
        ..Endpoint::default()
    }
}

#[test]
fn pod_to_endpoint_conditions_node_zone_hostname() {
    let svc = service("ns", "web").build();
    let publish = service("ns", "web").publish_not_ready(true).build();
    let base = || pod("ns", "p").ip("10.0.0.5").node("node-1");
    let zone_a = |mut e: Endpoint| {
        e.zone = Some("zone-a".to_owned());
        e
    };
    let with_hostname = |mut e: Endpoint| {
        e.hostname = Some("example".to_owned());
        e
    };
    let zoned = zoned_node();
    let cases: Vec<(&str, PodProjection, Option<&Node>, &Service, Endpoint)> = vec![
        (
            "ready pod",
            base().ready(true).projection(),
            None,
            &svc,
            expected("10.0.0.5", true, true, false),
        ),
        (
            "ready pod, publishNotReadyAddresses",
            base().ready(true).projection(),
            None,
            &publish,
            expected("10.0.0.5", true, true, false),
        ),
        (
            "unready pod",
            base().ready(false).projection(),
            None,
            &svc,
            expected("10.0.0.5", false, false, false),
        ),
        (
            "unready pod, publishNotReadyAddresses",
            base().ready(false).projection(),
            None,
            &publish,
            expected("10.0.0.5", true, false, false),
        ),
        (
            "ready pod on a zoned node",
            base().ready(true).projection(),
            Some(&zoned),
            &svc,
            zone_a(expected("10.0.0.5", true, true, false)),
        ),
        (
            "dual-stack pod in an IPv4 slice",
            base().ips(&["10.0.0.5", "fd00::5"]).ready(true).projection(),
            Some(&zoned),
            &svc,
            zone_a(expected("10.0.0.5", true, true, false)),
        ),
        (
            "hostname and subdomain matching the service",
            base().hostname("example").subdomain("web").ready(true).projection(),
            Some(&zoned),
            &svc,
            with_hostname(zone_a(expected("10.0.0.5", true, true, false))),
        ),
        (
            "hostname with another subdomain",
            base().hostname("example").subdomain("other").ready(true).projection(),
            None,
            &svc,
            expected("10.0.0.5", true, true, false),
        ),
        (
            "ready terminating pod",
            base().ready(true).deleting().projection(),
            None,
            &svc,
            expected("10.0.0.5", false, true, true),
        ),
        (
            "unready terminating pod",
            base().ready(false).deleting().projection(),
            None,
            &svc,
            expected("10.0.0.5", false, false, true),
        ),
        (
            "ready terminating pod, publishNotReadyAddresses",
            base().ready(true).deleting().projection(),
            None,
            &publish,
            expected("10.0.0.5", true, true, true),
        ),
    ];
    for (name, pod, node, svc, want) in cases {
        assert_eq!(pod_to_endpoint(&pod, node, svc, IpFamily::V4), want, "{name}");
    }
}

#[test]
fn addresses_are_canonical_and_of_the_slice_family_only() {
    let svc = service("ns", "web").ip_families(&["IPv4", "IPv6"]).build();
    let p = pod("ns", "p")
        .ips(&["010.000.000.005", "1234::5678:0000:0000:9abc:def0", "not-an-ip"])
        .projection();
    assert_eq!(pod_to_endpoint(&p, None, &svc, IpFamily::V4).addresses, ["10.0.0.5"]);
    assert_eq!(
        pod_to_endpoint(&p, None, &svc, IpFamily::V6).addresses,
        ["1234::5678:0:0:9abc:def0"]
    );
}

#[test]
fn only_status_pod_ips_give_addresses() {
    let svc = service("ns", "web").build();
    let legacy = pod("ns", "p").legacy_pod_ip("10.0.0.5").projection();
    assert!(pod_to_endpoint(&legacy, None, &svc, IpFamily::V4).addresses.is_empty());
}

#[test]
fn node_without_zone_label_or_with_empty_zone_gives_no_zone() {
    let svc = service("ns", "web").build();
    let p = pod("ns", "p").ip("10.0.0.5").node("node-1").projection();
    for zone in [None, Some("")] {
        let n = node("node-1", zone, "1");
        assert_eq!(pod_to_endpoint(&p, Some(&n), &svc, IpFamily::V4).zone, None, "{zone:?}");
    }
}

#[test]
fn endpoint_ports_carry_name_protocol_and_app_protocol() {
    let svc = service("ns", "web")
        .port("http", 80, 8080)
        .app_protocol("example.com/custom")
        .named_port("https", 443, "https")
        .app_protocol("https")
        .port("", 53, 5353)
        .build();
    let p = pod("ns", "p").container_port("https", 8443, "TCP").projection();
    let mut http = tcp_port("http", 8080);
    http.app_protocol = Some("example.com/custom".to_owned());
    let mut https = tcp_port("https", 8443);
    https.app_protocol = Some("https".to_owned());
    assert_eq!(endpoint_ports(&svc, &p), [http, https, tcp_port("", 5353)]);
}

#[test]
fn unresolved_ports_are_left_out_and_headless_without_ports_has_none() {
    let svc = service("ns", "web")
        .named_port("http", 80, "http")
        .port("metrics", 9090, 9090)
        .build();
    let p = pod("ns", "p").projection();
    assert_eq!(endpoint_ports(&svc, &p), [tcp_port("metrics", 9090)]);
    assert!(endpoint_ports(&service("ns", "web").headless().build(), &p).is_empty());
}

#[test]
fn service_port_protocol_is_kept() {
    let svc = service("ns", "dns")
        .port_full("dns", 53, IntOrString::Int(53), "UDP")
        .build();
    let ports = endpoint_ports(&svc, &pod("ns", "p").projection());
    assert_eq!(ports[0].protocol.as_deref(), Some("UDP"));
}

fn names(group: &DesiredGroup) -> Vec<String> {
    group
        .endpoints
        .iter()
        .filter_map(|e| e.target_ref.as_ref().and_then(|t| t.name.clone()))
        .collect()
}

#[test]
fn eligible_pods_only_terminating_included() {
    let svc = service("ns", "web").port("http", 80, 8080).build();
    let nodes = lookup(vec![zoned_node()]);
    let pods = [
        pod("ns", "running").ip("10.0.0.1").node("node-1").projection(),
        pod("ns", "pending-with-ip")
            .phase("Pending")
            .ip("10.0.0.2")
            .node("node-1")
            .projection(),
        pod("ns", "terminating")
            .ip("10.0.0.3")
            .node("node-1")
            .deleting()
            .projection(),
        pod("ns", "failed")
            .phase("Failed")
            .ip("10.0.0.4")
            .node("node-1")
            .projection(),
        pod("ns", "succeeded")
            .phase("Succeeded")
            .ip("10.0.0.5")
            .node("node-1")
            .projection(),
        pod("ns", "no-ip").node("node-1").projection(),
    ];
    let desired = desired_endpoints(&svc, &pods, &nodes);
    let groups = &desired.by_family[&IpFamily::V4];
    assert_eq!(groups.len(), 1);
    let group = &groups[&PortMapKey::new(&[tcp_port("http", 8080)])];
    assert_eq!(names(group), ["running", "pending-with-ip", "terminating"]);
    assert!(desired.missing_nodes.is_empty());
}

#[test]
fn named_ports_split_pods_into_groups_and_a_pod_without_the_port_gets_an_empty_group() {
    let svc = service("ns", "web").named_port("http", 80, "http").build();
    let nodes = lookup(vec![zoned_node()]);
    let pods = [
        pod("ns", "a")
            .container_port("http", 8080, "TCP")
            .ip("10.0.0.1")
            .node("node-1")
            .projection(),
        pod("ns", "b")
            .container_port("http", 8081, "TCP")
            .ip("10.0.0.2")
            .node("node-1")
            .projection(),
        pod("ns", "c")
            .container_port("http", 8080, "TCP")
            .ip("10.0.0.3")
            .node("node-1")
            .projection(),
        pod("ns", "d").ip("10.0.0.4").node("node-1").projection(),
    ];
    let groups = &desired_endpoints(&svc, &pods, &nodes).by_family[&IpFamily::V4];
    let by_ports = |ports: &[EndpointPort]| names(&groups[&PortMapKey::new(ports)]);
    assert_eq!(by_ports(&[tcp_port("http", 8080)]), ["a", "c"]);
    assert_eq!(by_ports(&[tcp_port("http", 8081)]), ["b"]);
    assert_eq!(by_ports(&[]), ["d"], "a pod resolving no port is still an endpoint");
    assert!(groups[&PortMapKey::default()].ports.is_empty());
}

#[test]
fn a_group_exists_for_every_family_even_without_addresses_of_it() {
    let svc = service("ns", "web")
        .ip_families(&["IPv4", "IPv6"])
        .port("http", 80, 8080)
        .build();
    let nodes = lookup(vec![zoned_node()]);
    let pods = [pod("ns", "v4-only").ip("10.0.0.1").node("node-1").projection()];
    let desired = desired_endpoints(&svc, &pods, &nodes);
    let key = PortMapKey::new(&[tcp_port("http", 8080)]);
    assert_eq!(desired.by_family[&IpFamily::V4][&key].endpoints.len(), 1);
    assert!(desired.by_family[&IpFamily::V6][&key].endpoints.is_empty());
}

#[test]
fn missing_node_skips_the_pod_unless_not_ready_addresses_are_published() {
    let nodes = lookup(vec![node("node-0", Some("zone-a"), "1")]);
    let pods = [
        pod("ns", "p0").ip("10.0.0.1").node("node-0").ready(true).projection(),
        pod("ns", "p1").ip("10.0.0.2").node("node-1").ready(true).projection(),
    ];
    let key = PortMapKey::new(&[tcp_port("http", 8080)]);

    let svc = service("ns", "web").port("http", 80, 8080).build();
    let desired = desired_endpoints(&svc, &pods, &nodes);
    assert_eq!(names(&desired.by_family[&IpFamily::V4][&key]), ["p0"]);
    assert_eq!(
        desired.missing_nodes,
        [MissingNode {
            pod: "p1".to_owned(),
            node: "node-1".to_owned()
        }]
    );

    let publish = service("ns", "web")
        .port("http", 80, 8080)
        .publish_not_ready(true)
        .build();
    let desired = desired_endpoints(&publish, &pods, &nodes);
    let group = &desired.by_family[&IpFamily::V4][&key];
    assert_eq!(names(group), ["p0", "p1"]);
    let p1 = group.endpoints.iter().find(|e| e.addresses == ["10.0.0.2"]).unwrap();
    assert_eq!(p1.zone, None);
    assert_eq!(p1.node_name.as_deref(), Some("node-1"));
    assert!(desired.missing_nodes.is_empty());
}

#[test]
fn a_pod_without_node_name_counts_as_on_a_missing_node() {
    let svc = service("ns", "web").build();
    let pods = [pod("ns", "p").ip("10.0.0.1").projection()];
    let desired = desired_endpoints(&svc, &pods, &lookup(vec![zoned_node()]));
    assert_eq!(desired.missing_nodes[0].node, "");
}
