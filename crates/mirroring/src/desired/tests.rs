//! Desired state tables (upstream's `TestAddressToEndpoint`,
//! `epPortsToEpsPorts` and the desired-state half of `TestReconcile`).

use super::*;
use crate::test_support::{addr, addr_on, addr_pod, endpoints, port, slice_port, subset};

fn v4(ports: &[EndpointPort]) -> SliceKey {
    SliceKey::new(IpFamily::V4, ports)
}

fn v6(ports: &[EndpointPort]) -> SliceKey {
    SliceKey::new(IpFamily::V6, ports)
}

fn listed(group: &DesiredGroup) -> Vec<(String, Option<bool>)> {
    group
        .endpoints
        .iter()
        .map(|e| (e.addresses[0].clone(), e.conditions.as_ref().and_then(|c| c.ready)))
        .collect()
}

#[test]
fn an_address_becomes_an_endpoint_with_ready_only() {
    let (family, endpoint) = address_to_endpoint(&addr_on("10.0.0.1", "pod-1", "node-1"), true).unwrap();
    assert_eq!(family, IpFamily::V4);
    assert_eq!(endpoint.addresses, ["10.0.0.1"]);
    assert_eq!(
        endpoint.conditions,
        Some(EndpointConditions {
            ready: Some(true),
            serving: None,
            terminating: None
        })
    );
    assert_eq!(endpoint.hostname.as_deref(), Some("pod-1"));
    assert_eq!(endpoint.node_name.as_deref(), Some("node-1"));
    assert!(endpoint.zone.is_none() && endpoint.hints.is_none() && endpoint.target_ref.is_none());

    let mut with_target = addr_pod("10.0.0.2", "p");
    with_target.hostname = Some(String::new());
    if let Some(t) = with_target.target_ref.as_mut() {
        t.resource_version = Some("42".to_owned());
    }
    let (_, endpoint) = address_to_endpoint(&with_target, false).unwrap();
    assert_eq!(endpoint.hostname, None, "an empty hostname is not copied");
    assert_eq!(endpoint.target_ref, with_target.target_ref, "target copied whole");
    assert_eq!(endpoint.conditions.unwrap().ready, Some(false));
}

#[test]
fn ips_are_parsed_leniently_and_reprinted() {
    let cases = [
        ("10.0.0.1", Some((IpFamily::V4, "10.0.0.1"))),
        ("010.000.000.001", Some((IpFamily::V4, "10.0.0.1"))),
        ("2001:DB8:0:0:0:0:0:1", Some((IpFamily::V6, "2001:db8::1"))),
        ("::ffff:10.0.0.1", Some((IpFamily::V4, "10.0.0.1"))),
        ("fd00::1", Some((IpFamily::V6, "fd00::1"))),
        ("not-an-ip", None),
        ("10.0.0.256", None),
        ("", None),
    ];
    for (ip, want) in cases {
        let got = address_to_endpoint(&addr(ip), true).map(|(f, e)| (f, e.addresses[0].clone()));
        assert_eq!(got, want.map(|(f, s)| (f, s.to_owned())), "{ip}");
    }
}

#[test]
fn ports_convert_with_names_always_present() {
    let mut unnamed = port("", 53, "UDP");
    unnamed.name = None;
    let mut app = port("web", 80, "TCP");
    app.app_protocol = Some("http".to_owned());
    let mut defaulted = port("x", 1, "TCP");
    defaulted.protocol = None;
    let converted = convert_ports(&[unnamed, app, defaulted]);
    assert_eq!(converted[0], slice_port("", 53, "UDP"));
    assert_eq!(converted[1].app_protocol.as_deref(), Some("http"));
    assert_eq!(converted[2].protocol.as_deref(), Some("TCP"));
    assert!(convert_ports(&[]).is_empty());
}

#[test]
fn no_subsets_no_groups() {
    let got = desired(&endpoints("foo", vec![]), 1000);
    assert!(got.groups.is_empty());
    assert_eq!((got.invalid_addresses, got.addresses_skipped), (0, 0));
}

#[test]
fn a_subset_registers_both_families() {
    let ep = endpoints(
        "foo",
        vec![subset(vec![addr("10.0.0.1")], vec![], vec![port("http", 80, "TCP")])],
    );
    let got = desired(&ep, 1000);
    let ports = [slice_port("http", 80, "TCP")];
    assert_eq!(got.groups.len(), 2);
    assert_eq!(listed(&got.groups[&v4(&ports)]), [("10.0.0.1".to_owned(), Some(true))]);
    assert!(got.groups[&v6(&ports)].endpoints.is_empty());
    assert_eq!(got.groups[&v4(&ports)].ports, ports);
}

#[test]
fn ready_and_not_ready_share_a_group() {
    let ep = endpoints(
        "foo",
        vec![subset(
            vec![addr("10.1.1.1"), addr("10.1.1.2")],
            vec![addr("10.0.0.1"), addr("10.0.0.2")],
            vec![port("http", 80, "TCP"), port("https", 443, "UDP")],
        )],
    );
    let got = desired(&ep, 1000);
    let ports = [slice_port("http", 80, "TCP"), slice_port("https", 443, "UDP")];
    let mut got = listed(&got.groups[&v4(&ports)]);
    got.sort();
    let want: Vec<(String, Option<bool>)> = [
        ("10.0.0.1", false),
        ("10.0.0.2", false),
        ("10.1.1.1", true),
        ("10.1.1.2", true),
    ]
    .iter()
    .map(|(ip, r)| ((*ip).to_owned(), Some(*r)))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn dual_stack_subsets_split_by_family() {
    let ep = endpoints(
        "foo",
        vec![
            subset(
                vec![addr("2001:db8::1"), addr("10.0.0.2")],
                vec![],
                vec![port("http", 80, "TCP")],
            ),
            subset(
                vec![addr("10.0.1.1"), addr("2001:db8::2")],
                vec![],
                vec![port("http", 3000, "TCP")],
            ),
        ],
    );
    let got = desired(&ep, 1000);
    let non_empty: Vec<(&str, usize)> = got
        .groups
        .iter()
        .map(|(k, g)| (k.address_type.as_str(), g.endpoints.len()))
        .collect();
    assert_eq!(non_empty.len(), 4);
    assert!(non_empty.iter().all(|(_, n)| *n == 1));
    assert_eq!(got.endpoint_count(), 4);
}

#[test]
fn invalid_addresses_are_counted_and_do_not_use_the_cap() {
    let ep = endpoints(
        "foo",
        vec![subset(
            vec![
                addr("0-bogus"),
                addr("10.0.0.1"),
                addr("0-also-bogus"),
                addr("10.0.0.2"),
            ],
            vec![],
            vec![port("http", 80, "TCP")],
        )],
    );
    let got = desired(&ep, 2);
    assert_eq!(got.invalid_addresses, 2);
    assert_eq!(got.addresses_skipped, 2);
    assert_eq!(got.endpoint_count(), 2);
}

#[test]
fn the_cap_applies_per_repacked_subset_in_canonical_order() {
    // Two written subsets on one port repack into one of 3 ready + 1 not ready.
    let ep = endpoints(
        "bar",
        vec![
            subset(
                vec![addr("10.0.2.9"), addr("10.0.2.10")],
                vec![],
                vec![port("http", 80, "TCP")],
            ),
            subset(
                vec![addr("10.0.2.2")],
                vec![addr("10.0.2.1")],
                vec![port("http", 80, "TCP")],
            ),
        ],
    );
    let got = desired(&ep, 2);
    let ports = [slice_port("http", 80, "TCP")];
    let mut kept = listed(&got.groups[&v4(&ports)]);
    kept.sort();
    assert_eq!(
        kept,
        [
            ("10.0.2.10".to_owned(), Some(true)),
            ("10.0.2.2".to_owned(), Some(true))
        ]
    );
    assert_eq!((got.invalid_addresses, got.addresses_skipped), (0, 2));
}

#[test]
fn invalid_addresses_past_the_cap_are_not_examined() {
    let ep = endpoints(
        "foo",
        vec![subset(
            vec![addr("10.0.0.1"), addr("10.0.0.2")],
            vec![addr("zzz-invalid")],
            vec![port("http", 80, "TCP")],
        )],
    );
    let got = desired(&ep, 2);
    assert_eq!((got.invalid_addresses, got.addresses_skipped), (0, 1));
}

#[test]
fn the_cap_is_shared_between_families() {
    let ep = endpoints(
        "foo",
        vec![subset(
            vec![addr("10.0.0.1"), addr("fd00::1"), addr("fd00::2")],
            vec![],
            vec![port("http", 80, "TCP")],
        )],
    );
    let got = desired(&ep, 2);
    assert_eq!(got.endpoint_count(), 2);
    assert_eq!(got.addresses_skipped, 1);
}

#[test]
fn portless_subsets_get_an_empty_port_list() {
    let ep = endpoints("foo", vec![subset(vec![addr("10.0.0.1")], vec![], vec![])]);
    let got = desired(&ep, 1000);
    let group = &got.groups[&v4(&[])];
    assert!(group.ports.is_empty());
    assert_eq!(group.endpoints.len(), 1);
}

#[test]
fn existing_slices_key_by_address_type_and_unordered_ports() {
    let mut slice = EndpointSlice {
        address_type: "IPv4".to_owned(),
        ports: Some(vec![slice_port("b", 2, "TCP"), slice_port("a", 1, "TCP")]),
        ..EndpointSlice::default()
    };
    assert_eq!(
        SliceKey::of(&slice),
        v4(&[slice_port("a", 1, "TCP"), slice_port("b", 2, "TCP")])
    );
    slice.ports = None;
    assert_eq!(SliceKey::of(&slice), v4(&[]));
    slice.address_type = "FQDN".to_owned();
    assert_ne!(SliceKey::of(&slice), v4(&[]));
}
