//! Pod rules, table by table, re-expressing upstream's
//! `TestShouldPodBeInEndpoints`, `TestShouldSetHostname`, `Test_podChanged`
//! and the projection's own guarantees.

use super::*;
use crate::fixtures::{at, pod};

#[test]
fn should_be_endpoint_follows_phase_ip_and_deletion() {
    struct Case {
        name: &'static str,
        pod: PodProjection,
        include_terminating: bool,
        want: bool,
    }
    let base = || pod("ns", "p").ip("1.2.3.4");
    let cases = [
        Case {
            name: "failed pod",
            pod: base().phase("Failed").projection(),
            include_terminating: false,
            want: false,
        },
        Case {
            name: "succeeded pod",
            pod: base().phase("Succeeded").projection(),
            include_terminating: false,
            want: false,
        },
        Case {
            name: "failed pod even when terminating pods are included",
            pod: base().phase("Failed").ready(true).projection(),
            include_terminating: true,
            want: false,
        },
        Case {
            name: "running pod without any IP",
            pod: pod("ns", "p").ips(&[]).projection(),
            include_terminating: false,
            want: false,
        },
        Case {
            name: "terminating pod, terminating pods excluded",
            pod: base().ready(true).deleting().projection(),
            include_terminating: false,
            want: false,
        },
        Case {
            name: "terminating pod, terminating pods included",
            pod: base().deleting().projection(),
            include_terminating: true,
            want: true,
        },
        Case {
            name: "pending pod with an IP",
            pod: base().phase("Pending").projection(),
            include_terminating: false,
            want: true,
        },
        Case {
            name: "unknown phase",
            pod: base().phase("Unknown").projection(),
            include_terminating: false,
            want: true,
        },
        Case {
            name: "running pod",
            pod: base().projection(),
            include_terminating: false,
            want: true,
        },
        Case {
            name: "two pod IPs",
            pod: pod("ns", "p")
                .ips(&["1.2.3.4", "1234::5678:0000:0000:9abc:def0"])
                .projection(),
            include_terminating: false,
            want: true,
        },
        Case {
            name: "only the legacy podIP field",
            pod: pod("ns", "p").legacy_pod_ip("1.2.3.4").projection(),
            include_terminating: false,
            want: true,
        },
    ];
    for case in cases {
        assert_eq!(
            case.pod.should_be_endpoint(case.include_terminating),
            case.want,
            "{}",
            case.name
        );
    }
}

#[test]
fn readiness_is_the_ready_condition_only() {
    assert!(pod("ns", "p").ready(true).projection().is_ready());
    assert!(!pod("ns", "p").ready(false).projection().is_ready());
    assert!(
        !pod("ns", "p").projection().is_ready(),
        "no Ready condition means not ready"
    );
    assert!(
        pod("ns", "p").phase("Failed").ready(true).projection().is_ready(),
        "phase is not looked at"
    );
}

#[test]
fn hostname_needs_hostname_matching_subdomain_and_namespace() {
    let cases = [
        (
            "all matching",
            pod("ns", "p").hostname("foo").subdomain("svc-name"),
            "ns",
            "svc-name",
            true,
        ),
        (
            "hostname not set",
            pod("ns", "p").subdomain("svc-name"),
            "ns",
            "svc-name",
            false,
        ),
        (
            "empty hostname",
            pod("ns", "p").hostname("").subdomain("svc-name"),
            "ns",
            "svc-name",
            false,
        ),
        (
            "subdomain is another name",
            pod("ns", "p").hostname("h").subdomain("subdomain"),
            "ns",
            "name",
            false,
        ),
        (
            "different namespace",
            pod("ns1", "p").hostname("h").subdomain("svc-name"),
            "ns2",
            "svc-name",
            false,
        ),
    ];
    for (name, builder, svc_ns, svc_name, want) in cases {
        assert_eq!(
            builder.projection().should_set_hostname(svc_ns, svc_name),
            want,
            "{name}"
        );
    }
}

#[test]
fn dual_stack_pod_ips_split_by_family() {
    let p = pod("ns", "p")
        .ips(&["10.0.0.1", "fd00::1", "10.0.0.2", "fd00::2"])
        .projection();
    assert_eq!(
        p.ips_of_family(IpFamily::V4).collect::<Vec<_>>(),
        ["10.0.0.1", "10.0.0.2"]
    );
    assert_eq!(
        p.ips_of_family(IpFamily::V6).collect::<Vec<_>>(),
        ["fd00::1", "fd00::2"]
    );
}

#[test]
fn invalid_and_ipv4_mapped_pod_ips_belong_to_no_family() {
    let p = pod("ns", "p")
        .ips(&["not-an-ip", "::ffff:10.0.0.9", "10.0.0.1", "300.1.1.1"])
        .projection();
    assert_eq!(p.ips_of_family(IpFamily::V4).collect::<Vec<_>>(), ["10.0.0.1"]);
    assert_eq!(p.ips_of_family(IpFamily::V6).count(), 0);
}

#[test]
fn pod_change_classification() {
    type Modify = fn(PodBuilderPair) -> PodBuilderPair;
    type PodBuilderPair = (crate::fixtures::PodBuilder, crate::fixtures::PodBuilder);
    let cases: [(&str, Modify, bool, bool); 15] = [
        ("no changes", |p| p, false, false),
        ("node name changes", |(o, n)| (o, n.node("changed")), false, false),
        (
            "resourceVersion only",
            |(o, n)| (o, n.resource_version("2")),
            false,
            false,
        ),
        ("primary IPv4 added", |(o, n)| (o, n.ip("1.2.3.4")), true, false),
        (
            "primary IPv4 modified",
            |(o, n)| (o.ip("1.2.3.4"), n.ip("2.3.4.5")),
            true,
            false,
        ),
        ("primary IPv6 added", |(o, n)| (o, n.ip("fd00:10:96::1")), true, false),
        (
            "primary IPv6 modified",
            |(o, n)| (o.ip("fd00:10:96::1"), n.ip("fd00:10:96::2")),
            true,
            false,
        ),
        (
            "secondary IP added",
            |(o, n)| (o.ip("1.2.3.4"), n.ips(&["1.2.3.4", "fd00:10:96::1"])),
            true,
            false,
        ),
        (
            "secondary IP modified",
            |(o, n)| {
                (
                    o.ips(&["1.2.3.4", "fd00:10:96::1"]),
                    n.ips(&["1.2.3.4", "fd00:10:96::2"]),
                )
            },
            true,
            false,
        ),
        (
            "secondary IP removed",
            |(o, n)| (o.ips(&["1.2.3.4", "fd00:10:96::1"]), n.ip("1.2.3.4")),
            true,
            false,
        ),
        ("readiness flips", |(o, n)| (o, n.ready(true)), true, false),
        ("marked for deletion", |(o, n)| (o, n.deleting()), true, false),
        (
            "label added",
            |(o, n)| (o, n.labels([("foo", "bar"), ("label", "new")])),
            false,
            true,
        ),
        (
            "label modified",
            |(o, n)| {
                (
                    o.labels([("foo", "bar"), ("label", "old")]),
                    n.labels([("foo", "bar"), ("label", "new")]),
                )
            },
            false,
            true,
        ),
        (
            "label removed",
            |(o, n)| (o.labels([("foo", "bar"), ("label", "old")]), n),
            false,
            true,
        ),
    ];
    for (name, modify, endpoint_changed, labels_changed) in cases {
        let base = pod("test", "pod").labels([("foo", "bar")]).ready(false);
        let (old, new) = modify((base.clone(), base));
        let change = new.projection().change_from(&old.projection());
        assert_eq!(
            change,
            PodChange {
                endpoint_changed,
                labels_changed
            },
            "{name}"
        );
    }
}

#[test]
fn hostname_or_subdomain_change_counts_as_label_change() {
    let old = pod("ns", "p").hostname("a").subdomain("s").projection();
    assert!(
        pod("ns", "p")
            .hostname("b")
            .subdomain("s")
            .projection()
            .change_from(&old)
            .labels_changed
    );
    assert!(
        pod("ns", "p")
            .hostname("a")
            .subdomain("t")
            .projection()
            .change_from(&old)
            .labels_changed
    );
}

#[test]
fn deletion_timestamp_on_both_versions_counts_as_a_change() {
    // Upstream compares the deletionTimestamp pointers of two decoded objects,
    // which always differ when both are set.
    let old = pod("ns", "p").deleting().projection();
    let new = pod("ns", "p").deleting().resource_version("2").projection();
    assert!(new.change_from(&old).endpoint_changed);
}

#[test]
fn projection_keeps_what_the_controllers_read() {
    let full = pod("ns", "web-0")
        .labels([("app", "web")])
        .node("node-a")
        .hostname("web-0")
        .subdomain("web")
        .ips(&["10.0.0.1", "fd00::1"])
        .ready_since(true, at(30))
        .container_port("http", 8080, "TCP")
        .container_port("", 9000, "TCP")
        .init_container_port("sidecar-http", 15001, "TCP", true)
        .init_container_port("init-only", 15002, "TCP", false)
        .deleting()
        .build();
    let p = PodProjection::from(full);
    assert_eq!(p.name(), "web-0");
    assert_eq!(p.namespace(), "ns");
    assert_eq!(p.metadata.uid.as_deref(), Some("uid-web-0"));
    assert_eq!(p.metadata.resource_version.as_deref(), Some("1"));
    assert_eq!(p.labels().get("app").map(String::as_str), Some("web"));
    assert_eq!(p.node_name.as_deref(), Some("node-a"));
    assert_eq!(
        (p.hostname.as_deref(), p.subdomain.as_deref()),
        (Some("web-0"), Some("web"))
    );
    assert_eq!(p.pod_ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(p.pod_ips, ["10.0.0.1", "fd00::1"]);
    assert_eq!(p.trigger_time(), Some(at(30)));
    assert!(p.is_ready() && p.is_terminating());
    let names: Vec<_> = p.named_ports.iter().map(|port| port.name.as_str()).collect();
    assert_eq!(
        names,
        ["http", "sidecar-http"],
        "unnamed and plain init-container ports are dropped"
    );
    assert_eq!(<PodProjection as kube::Resource>::plural(&()), "pods");
}

#[test]
fn trigger_time_formats_like_go_rfc3339nano() {
    let cases = [
        ("2024-01-15T10:00:00Z", "2024-01-15T10:00:00Z"),
        ("2024-01-15T10:00:00.5Z", "2024-01-15T10:00:00.5Z"),
        ("2024-01-15T10:00:00.000000001Z", "2024-01-15T10:00:00.000000001Z"),
        ("2024-01-15T12:00:00.120+02:00", "2024-01-15T10:00:00.12Z"),
        ("1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.5Z"),
    ];
    for (input, want) in cases {
        let time: Timestamp = input.parse().unwrap();
        assert_eq!(format_trigger_time(time), want, "{input}");
    }
}

/// Pods as the API server sends them, from bare to everything the
/// projection reads plus what it skips.
fn wire_pods() -> Vec<serde_json::Value> {
    use serde_json::json;
    vec![
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare"}}),
        json!({"metadata": {"name": "nulls", "labels": null}, "spec": null, "status": null}),
        json!({"metadata": {"name": "empty-labels", "namespace": "ns", "labels": {}}, "spec": {"containers": []}}),
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "full", "namespace": "prod", "uid": "u-1", "resourceVersion": "42",
                "labels": {"app": "web", "tier": "front"},
                "annotations": {"a": "b"},
                "creationTimestamp": "2026-01-02T03:04:05Z",
                "deletionTimestamp": "2026-01-02T03:05:05Z",
                "deletionGracePeriodSeconds": 30,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "rs", "controller": true}],
                "managedFields": [{"manager": "kubelet", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}]
            },
            "spec": {
                "nodeName": "node-1", "hostname": "h", "subdomain": "sub",
                "containers": [
                    {"name": "app", "image": "nginx", "env": [{"name": "X", "value": "1"}],
                     "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 9090},
                               {"name": "", "containerPort": 1}, {"name": "dns", "containerPort": 53, "protocol": "UDP"}]}
                ],
                "initContainers": [
                    {"name": "sidecar", "image": "envoy", "restartPolicy": "Always", "ports": [{"name": "admin", "containerPort": 15000}]},
                    {"name": "init", "image": "busybox", "ports": [{"name": "never", "containerPort": 1}]}
                ],
                "volumes": [{"name": "v", "emptyDir": {}}]
            },
            "status": {
                "phase": "Running", "podIP": "10.0.0.1",
                "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
                "hostIP": "192.168.0.1",
                "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Ready", "status": "False", "lastTransitionTime": "2026-01-02T03:04:10Z"},
                    {"type": "Ready", "status": "True"}
                ],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "image": "nginx", "imageID": "x"}]
            }
        }),
        json!({"metadata": {"name": "ready"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
    ]
}

#[test]
fn decoding_a_pod_straight_into_a_projection_equals_projecting_the_decoded_pod() {
    for json in wire_pods() {
        let direct: PodProjection = serde_json::from_value(json.clone()).unwrap();
        let via_pod = PodProjection::from(serde_json::from_value::<Pod>(json.clone()).unwrap());
        assert_eq!(direct, via_pod, "for {json}");
    }
    let full: PodProjection = serde_json::from_value(wire_pods()[3].clone()).unwrap();
    let ports: Vec<&str> = full.named_ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        ports,
        ["http", "dns", "admin"],
        "containers, then native sidecars; unnamed left out"
    );
    assert!(full.ready.is_some_and(|r| !r.is_true), "the first Ready condition");
}
