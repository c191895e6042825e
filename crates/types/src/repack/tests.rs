//! Table tests for repacking: upstream's `TestPackSubsets`
//! (`pkg/api/v1/endpoints/util_test.go`) re-expressed, plus the port-less
//! sentinel of newer releases and ecm's documented order (addresses by IP
//! bytes then uid, ports by (name, number, protocol, appProtocol), subsets by
//! first port).

use super::*;
use k8s_openapi::api::core::v1::ObjectReference;

// ---------------------------------------------------------------- helpers

/// An address with only an IP.
fn ip(ip: &str) -> EndpointAddress {
    EndpointAddress {
        ip: ip.to_owned(),
        ..EndpointAddress::default()
    }
}

/// An address whose target has `uid`.
fn with_uid(ip: &str, uid: &str) -> EndpointAddress {
    EndpointAddress {
        target_ref: Some(ObjectReference {
            uid: Some(uid.to_owned()),
            ..ObjectReference::default()
        }),
        ..self::ip(ip)
    }
}

/// An address whose target has a name and no uid.
fn with_target_name(ip: &str, name: &str) -> EndpointAddress {
    EndpointAddress {
        target_ref: Some(ObjectReference {
            name: Some(name.to_owned()),
            ..ObjectReference::default()
        }),
        ..self::ip(ip)
    }
}

/// A port with only a number.
fn port(number: i32) -> EndpointPort {
    EndpointPort {
        port: number,
        ..EndpointPort::default()
    }
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

/// An expected subset: empty lists are absent, as `repack` writes them.
fn subset(ready: Vec<EndpointAddress>, not_ready: Vec<EndpointAddress>, ports: Vec<EndpointPort>) -> EndpointSubset {
    EndpointSubset {
        addresses: non_empty(ready),
        not_ready_addresses: non_empty(not_ready),
        ports: non_empty(ports),
    }
}

/// A given (stored) subset: every list present, even when empty.
fn given(ready: Vec<EndpointAddress>, not_ready: Vec<EndpointAddress>, ports: Vec<EndpointPort>) -> EndpointSubset {
    EndpointSubset {
        addresses: Some(ready),
        not_ready_addresses: Some(not_ready),
        ports: Some(ports),
    }
}

fn raw(address: EndpointAddress, port: Option<EndpointPort>, ready: bool) -> RawEndpoint {
    RawEndpoint { address, port, ready }
}

// ------------------------------------------------------ repack_subsets

/// Upstream's `TestPackSubsets` table, case by case (with the newer
/// port-less rule: a subset without ports keeps its addresses).
#[test]
fn repack_subsets_matches_upstream_pack_subsets_table() {
    let foo = || with_target_name("1.2.3.4", "foo");
    let bar = || with_target_name("1.2.3.4", "bar");
    let cases: Vec<(&str, Vec<EndpointSubset>, Vec<EndpointSubset>)> = vec![
        ("empty everything", vec![given(vec![], vec![], vec![])], vec![]),
        ("empty addresses", vec![given(vec![], vec![], vec![port(111)])], vec![]),
        (
            "empty ports",
            vec![given(vec![ip("1.2.3.4")], vec![], vec![])],
            vec![subset(vec![ip("1.2.3.4")], vec![], vec![])],
        ),
        (
            "empty ports, not ready",
            vec![given(vec![], vec![ip("1.2.3.4")], vec![])],
            vec![subset(vec![], vec![ip("1.2.3.4")], vec![])],
        ),
        (
            "one set, one ip, one port",
            vec![given(vec![ip("1.2.3.4")], vec![], vec![port(111)])],
            vec![subset(vec![ip("1.2.3.4")], vec![], vec![port(111)])],
        ),
        (
            "one set, one ip, one port (IPv6)",
            vec![given(vec![ip("beef::1:2:3:4")], vec![], vec![port(111)])],
            vec![subset(vec![ip("beef::1:2:3:4")], vec![], vec![port(111)])],
        ),
        (
            "one set, one not-ready ip, one port",
            vec![given(vec![], vec![ip("1.2.3.4")], vec![port(111)])],
            vec![subset(vec![], vec![ip("1.2.3.4")], vec![port(111)])],
        ),
        (
            "one set, one ip, one uid, one port",
            vec![given(vec![with_uid("1.2.3.4", "uid-1")], vec![], vec![port(111)])],
            vec![subset(vec![with_uid("1.2.3.4", "uid-1")], vec![], vec![port(111)])],
        ),
        (
            "one set, one not-ready ip, one uid, one port",
            vec![given(vec![], vec![with_uid("1.2.3.4", "uid-1")], vec![port(111)])],
            vec![subset(vec![], vec![with_uid("1.2.3.4", "uid-1")], vec![port(111)])],
        ),
        (
            "one set, one ip, empty uid, one port",
            vec![given(vec![with_uid("1.2.3.4", "")], vec![], vec![port(111)])],
            vec![subset(vec![with_uid("1.2.3.4", "")], vec![], vec![port(111)])],
        ),
        (
            "one set, one not-ready ip, empty uid, one port",
            vec![given(vec![], vec![with_uid("1.2.3.4", "")], vec![port(111)])],
            vec![subset(vec![], vec![with_uid("1.2.3.4", "")], vec![port(111)])],
        ),
        (
            "one set, two ips, one port",
            vec![given(vec![ip("1.2.3.4"), ip("5.6.7.8")], vec![], vec![port(111)])],
            vec![subset(vec![ip("1.2.3.4"), ip("5.6.7.8")], vec![], vec![port(111)])],
        ),
        (
            "one set, two mixed ips, one port",
            vec![given(vec![ip("1.2.3.4")], vec![ip("5.6.7.8")], vec![port(111)])],
            vec![subset(vec![ip("1.2.3.4")], vec![ip("5.6.7.8")], vec![port(111)])],
        ),
        (
            "one set, one ip both ready and not ready for one port: not ready wins",
            vec![given(vec![ip("1.2.3.4")], vec![ip("1.2.3.4")], vec![port(111)])],
            vec![subset(vec![], vec![ip("1.2.3.4")], vec![port(111)])],
        ),
        (
            "one set, one ip, two ports",
            vec![given(vec![ip("1.2.3.4")], vec![], vec![port(111), port(222)])],
            vec![subset(vec![ip("1.2.3.4")], vec![], vec![port(111), port(222)])],
        ),
        (
            "one set, dup ips, one port",
            vec![given(vec![ip("1.2.3.4"), ip("1.2.3.4")], vec![], vec![port(111)])],
            vec![subset(vec![ip("1.2.3.4")], vec![], vec![port(111)])],
        ),
        (
            "one set, dup ips, one port (IPv6)",
            vec![given(vec![ip("beef::1"), ip("beef::1")], vec![], vec![port(111)])],
            vec![subset(vec![ip("beef::1")], vec![], vec![port(111)])],
        ),
        (
            "one set, dup ips with uid-less targets: the first copy is kept",
            vec![given(vec![foo(), bar()], vec![], vec![port(111)])],
            vec![subset(vec![foo()], vec![], vec![port(111)])],
        ),
        (
            "one set, dup mixed ips with uid-less targets: first copy, not ready",
            vec![given(vec![foo()], vec![bar()], vec![port(111)])],
            vec![subset(vec![], vec![foo()], vec![port(111)])],
        ),
        (
            "one set, one ip, dup ports",
            vec![given(vec![ip("1.2.3.4")], vec![], vec![port(111), port(111)])],
            vec![subset(vec![ip("1.2.3.4")], vec![], vec![port(111)])],
        ),
        (
            "two sets, dup ip, dup port",
            vec![
                given(vec![ip("1.2.3.4")], vec![], vec![port(111)]),
                given(vec![ip("1.2.3.4")], vec![], vec![port(111)]),
            ],
            vec![subset(vec![ip("1.2.3.4")], vec![], vec![port(111)])],
        ),
        (
            "two sets, dup mixed ip, dup port",
            vec![
                given(vec![ip("1.2.3.4")], vec![], vec![port(111)]),
                given(vec![], vec![ip("1.2.3.4")], vec![port(111)]),
            ],
            vec![subset(vec![], vec![ip("1.2.3.4")], vec![port(111)])],
        ),
        (
            "two sets, dup ip, two ports",
            vec![
                given(vec![ip("1.2.3.4")], vec![], vec![port(111)]),
                given(vec![ip("1.2.3.4")], vec![], vec![port(222)]),
            ],
            vec![subset(vec![ip("1.2.3.4")], vec![], vec![port(111), port(222)])],
        ),
        (
            "two sets, dup ip, dup uids, two ports",
            vec![
                given(vec![with_uid("1.2.3.4", "uid-1")], vec![], vec![port(111)]),
                given(vec![with_uid("1.2.3.4", "uid-1")], vec![], vec![port(222)]),
            ],
            vec![subset(
                vec![with_uid("1.2.3.4", "uid-1")],
                vec![],
                vec![port(111), port(222)],
            )],
        ),
        (
            "two sets, dup mixed ip, dup uids, two ports: split by readiness",
            vec![
                given(vec![with_uid("1.2.3.4", "uid-1")], vec![], vec![port(111)]),
                given(vec![], vec![with_uid("1.2.3.4", "uid-1")], vec![port(222)]),
            ],
            vec![
                subset(vec![with_uid("1.2.3.4", "uid-1")], vec![], vec![port(111)]),
                subset(vec![], vec![with_uid("1.2.3.4", "uid-1")], vec![port(222)]),
            ],
        ),
        (
            "two sets, two ips, dup port",
            vec![
                given(vec![ip("1.2.3.4")], vec![], vec![port(111)]),
                given(vec![ip("5.6.7.8")], vec![], vec![port(111)]),
            ],
            vec![subset(vec![ip("1.2.3.4"), ip("5.6.7.8")], vec![], vec![port(111)])],
        ),
        (
            "two sets, dup ip, two uids, dup ports",
            vec![
                given(vec![with_uid("1.2.3.4", "uid-1")], vec![], vec![port(111)]),
                given(vec![with_uid("1.2.3.4", "uid-2")], vec![], vec![port(111)]),
            ],
            vec![subset(
                vec![with_uid("1.2.3.4", "uid-1"), with_uid("1.2.3.4", "uid-2")],
                vec![],
                vec![port(111)],
            )],
        ),
        (
            "two sets, dup ip, with and without uid, dup ports",
            vec![
                given(vec![ip("1.2.3.4")], vec![], vec![port(111)]),
                given(vec![with_uid("1.2.3.4", "uid-2")], vec![], vec![port(111)]),
            ],
            vec![subset(
                vec![ip("1.2.3.4"), with_uid("1.2.3.4", "uid-2")],
                vec![],
                vec![port(111)],
            )],
        ),
        (
            "two sets, two ips, two dup ips with uid, dup port, wrong order",
            vec![
                given(vec![ip("5.6.7.8")], vec![], vec![port(111)]),
                given(vec![with_uid("5.6.7.8", "uid-1")], vec![], vec![port(111)]),
                given(vec![with_uid("1.2.3.4", "uid-1")], vec![], vec![port(111)]),
                given(vec![ip("1.2.3.4")], vec![], vec![port(111)]),
            ],
            vec![subset(
                vec![
                    ip("1.2.3.4"),
                    with_uid("1.2.3.4", "uid-1"),
                    ip("5.6.7.8"),
                    with_uid("5.6.7.8", "uid-1"),
                ],
                vec![],
                vec![port(111)],
            )],
        ),
        (
            "two sets, two mixed ips, two dup ips with uid, dup port, wrong order, split addresses",
            vec![
                given(vec![ip("5.6.7.8")], vec![], vec![port(111)]),
                given(vec![], vec![with_uid("5.6.7.8", "uid-1")], vec![port(111)]),
                given(vec![], vec![with_uid("1.2.3.4", "uid-1")], vec![port(111)]),
                given(vec![], vec![ip("1.2.3.4")], vec![port(111)]),
            ],
            vec![subset(
                vec![ip("5.6.7.8")],
                vec![
                    ip("1.2.3.4"),
                    with_uid("1.2.3.4", "uid-1"),
                    with_uid("5.6.7.8", "uid-1"),
                ],
                vec![port(111)],
            )],
        ),
        (
            "two sets, two ips, two ports",
            vec![
                given(vec![ip("1.2.3.4")], vec![], vec![port(111)]),
                given(vec![ip("5.6.7.8")], vec![], vec![port(222)]),
            ],
            vec![
                subset(vec![ip("1.2.3.4")], vec![], vec![port(111)]),
                subset(vec![ip("5.6.7.8")], vec![], vec![port(222)]),
            ],
        ),
        (
            "four sets, three ips, three ports, jumbled",
            vec![
                given(vec![ip("1.2.3.4")], vec![], vec![port(111)]),
                given(vec![ip("1.2.3.5")], vec![], vec![port(222)]),
                given(vec![ip("1.2.3.6")], vec![], vec![port(111)]),
                given(vec![ip("1.2.3.5")], vec![], vec![port(333)]),
            ],
            vec![
                subset(vec![ip("1.2.3.4"), ip("1.2.3.6")], vec![], vec![port(111)]),
                subset(vec![ip("1.2.3.5")], vec![], vec![port(222), port(333)]),
            ],
        ),
        (
            "four sets, three mixed ips, three ports, jumbled",
            vec![
                given(vec![ip("1.2.3.4")], vec![], vec![port(111)]),
                given(vec![], vec![ip("1.2.3.5")], vec![port(222)]),
                given(vec![ip("1.2.3.6")], vec![], vec![port(111)]),
                given(vec![], vec![ip("1.2.3.5")], vec![port(333)]),
            ],
            vec![
                subset(vec![ip("1.2.3.4"), ip("1.2.3.6")], vec![], vec![port(111)]),
                subset(vec![], vec![ip("1.2.3.5")], vec![port(222), port(333)]),
            ],
        ),
    ];
    for (case, input, expected) in &cases {
        let packed = repack_subsets(input);
        assert_eq!(&packed, expected, "{case}");
        assert_eq!(
            repack_subsets(&packed),
            packed,
            "{case}: repacking the output changes nothing"
        );
    }
    // `repacked_eq` answers as comparing with the repacked copy would, for
    // every input against every case's outcome.
    for (case, input, _) in &cases {
        let packed = repack_subsets(input);
        for (other, _, candidate) in &cases {
            assert_eq!(
                repacked_eq(input, candidate),
                crate::equality::endpoint_subsets_eq(Some(&packed), Some(candidate)),
                "{case} against the outcome of {other}"
            );
        }
        assert!(repacked_eq(input, &packed), "{case}: equal to its own repacking");
    }
}

#[test]
fn repack_subsets_of_nothing_is_nothing() {
    assert_eq!(repack_subsets(&[]), []);
    let absent_lists = EndpointSubset::default();
    assert_eq!(repack_subsets(&[absent_lists]), []);
}

// -------------------------------------------------------------- repack

#[test]
fn repack_of_no_entries_is_no_subsets() {
    assert_eq!(repack(Vec::new()), []);
}

/// Spec §5.1: one address seen ready and not ready for the same port is not
/// ready, whichever comes first.
#[test]
fn not_ready_wins_for_one_address_and_port_in_either_order() {
    let expected = [subset(vec![], vec![with_uid("10.0.0.1", "a")], vec![port(80)])];
    for first_ready in [true, false] {
        let entries = [first_ready, !first_ready].map(|ready| raw(with_uid("10.0.0.1", "a"), Some(port(80)), ready));
        assert_eq!(repack(entries), expected, "ready first: {first_ready}");
    }
}

/// Spec §5.1–5.2: readiness is per port, so an address ready for one port
/// and not for another appears in two subsets.
#[test]
fn readiness_is_tracked_per_port() {
    let a = || with_uid("10.0.0.1", "a");
    let entries = [raw(a(), Some(port(80)), true), raw(a(), Some(port(81)), false)];
    assert_eq!(
        repack(entries),
        [
            subset(vec![a()], vec![], vec![port(80)]),
            subset(vec![], vec![a()], vec![port(81)])
        ]
    );
}

/// Spec §5.2, scenario 15: ports served by different address sets split
/// into subsets, and an address may appear in several.
#[test]
fn different_port_sets_split_into_subsets_sharing_addresses() {
    let (a, b, c) = (
        || with_uid("10.0.0.1", "a"),
        || with_uid("10.0.0.2", "b"),
        || with_uid("10.0.0.3", "c"),
    );
    let mut entries = Vec::new();
    for address in [a(), b(), c()] {
        entries.push(raw(address.clone(), Some(port(80)), true));
        entries.push(raw(address.clone(), Some(port(9999)), true));
    }
    entries.push(raw(a(), Some(port(9100)), true));
    entries.push(raw(b(), Some(port(9100)), true));
    assert_eq!(
        repack(entries),
        [
            subset(vec![a(), b(), c()], vec![], vec![port(80), port(9999)]),
            subset(vec![a(), b()], vec![], vec![port(9100)])
        ]
    );
}

/// `LessEndpointAddress`: addresses sort by the bytes of the IP string (so
/// `10.0.0.10` before `10.0.0.9`, and IPv6 after IPv4 digits), equal IPs by
/// target uid with an untargeted address first.
#[test]
fn addresses_sort_by_ip_bytes_then_uid() {
    let inputs = [
        with_uid("fd00::9", "x"),
        with_uid("10.0.0.9", "x"),
        with_uid("10.0.0.10", "b"),
        with_uid("9.0.0.1", "x"),
        with_uid("fd00::10", "x"),
        ip("10.0.0.10"),
        with_uid("10.0.0.10", "a"),
    ];
    let expected = vec![
        ip("10.0.0.10"),
        with_uid("10.0.0.10", "a"),
        with_uid("10.0.0.10", "b"),
        with_uid("10.0.0.9", "x"),
        with_uid("9.0.0.1", "x"),
        with_uid("fd00::10", "x"),
        with_uid("fd00::9", "x"),
    ];
    let ready = inputs.clone().map(|address| raw(address, Some(port(80)), true));
    assert_eq!(repack(ready), [subset(expected.clone(), vec![], vec![port(80)])]);
    let not_ready = inputs.map(|address| raw(address, Some(port(80)), false));
    assert_eq!(repack(not_ready), [subset(vec![], expected, vec![port(80)])]);
}

/// ecm's documented order: ports by (name, number, protocol, appProtocol),
/// an unnamed port first; subsets by their first port, a port-less subset
/// first.
#[test]
fn ports_sort_by_name_number_protocol_app_protocol_and_subsets_by_first_port() {
    let full = |name: Option<&str>, number: i32, protocol: &str, app: Option<&str>| EndpointPort {
        name: name.map(str::to_owned),
        port: number,
        protocol: Some(protocol.to_owned()),
        app_protocol: app.map(str::to_owned),
    };
    let a = || with_uid("10.0.0.1", "a");
    let served = [
        full(Some("web"), 90, "UDP", None),
        full(Some("web"), 90, "TCP", None),
        full(Some("web"), 80, "TCP", Some("http")),
        full(Some("web"), 80, "TCP", None),
        full(None, 8080, "TCP", None),
    ];
    let entries: Vec<_> = served.iter().map(|p| raw(a(), Some(p.clone()), true)).collect();
    assert_eq!(
        repack(entries),
        [subset(
            vec![a()],
            vec![],
            vec![
                full(None, 8080, "TCP", None),
                full(Some("web"), 80, "TCP", None),
                full(Some("web"), 80, "TCP", Some("http")),
                full(Some("web"), 90, "TCP", None),
                full(Some("web"), 90, "UDP", None),
            ],
        )]
    );

    let b = || with_uid("10.0.0.2", "b");
    let c = || with_uid("10.0.0.3", "c");
    let entries = [
        raw(a(), Some(full(Some("metrics"), 9100, "TCP", None)), true),
        raw(b(), Some(full(Some("http"), 8080, "TCP", None)), true),
        raw(c(), None, true),
        raw(a(), Some(full(Some("admin"), 9999, "TCP", None)), true),
    ];
    assert_eq!(
        repack(entries),
        [
            subset(vec![c()], vec![], vec![]),
            subset(
                vec![a()],
                vec![],
                vec![
                    full(Some("admin"), 9999, "TCP", None),
                    full(Some("metrics"), 9100, "TCP", None)
                ]
            ),
            subset(vec![b()], vec![], vec![full(Some("http"), 8080, "TCP", None)]),
        ]
    );
}

/// Spec §5.1: addresses are the same when IP and target uid are; the first
/// copy seen is kept whole (hostname, node name, target).
#[test]
fn duplicate_addresses_merge_keeping_the_first_copy() {
    let first = EndpointAddress {
        hostname: Some("first".to_owned()),
        ..with_uid("10.0.0.1", "a")
    };
    let second = EndpointAddress {
        hostname: Some("second".to_owned()),
        ..with_uid("10.0.0.1", "a")
    };
    let other_pod = with_uid("10.0.0.1", "b");
    let entries = [
        raw(first.clone(), Some(port(80)), true),
        raw(second, Some(port(80)), true),
        raw(other_pod.clone(), Some(port(80)), true),
    ];
    assert_eq!(
        repack(entries),
        [subset(vec![first, other_pod], vec![], vec![port(80)])]
    );
}

/// `TestSyncEndpointsHeadlessWithoutPort`, scenario 04: entries without a
/// port (headless Service without ports) make one subset without ports.
#[test]
fn port_less_entries_make_one_subset_without_ports() {
    let entries = [
        raw(with_uid("10.0.0.2", "b"), None, true),
        raw(with_uid("10.0.0.1", "a"), None, false),
        raw(with_uid("10.0.0.10", "c"), None, true),
    ];
    let packed = repack(entries);
    assert_eq!(
        packed,
        [subset(
            vec![with_uid("10.0.0.10", "c"), with_uid("10.0.0.2", "b")],
            vec![with_uid("10.0.0.1", "a")],
            vec![]
        )]
    );
    assert_eq!(
        repack_subsets(&packed),
        packed,
        "the port-less subset survives repacking"
    );
}

/// Spec §6.2.1: repacking is how stored subsets are compared, so repacking
/// packed subsets — in any subset, port or address order — gives them back.
#[test]
fn repack_subsets_is_idempotent_on_repack_output_whatever_the_order() {
    let (a, b, c) = (
        || with_uid("10.0.0.1", "a"),
        || with_uid("10.0.0.2", "b"),
        || with_uid("10.0.0.3", "c"),
    );
    let entries = vec![
        raw(a(), Some(port(80)), true),
        raw(b(), Some(port(80)), true),
        raw(c(), Some(port(80)), false),
        raw(a(), Some(port(9100)), true),
        raw(b(), Some(port(9100)), true),
        raw(a(), Some(port(9999)), true),
        raw(b(), Some(port(9999)), true),
        raw(c(), Some(port(9999)), false),
    ];
    let packed = repack(entries.clone());
    assert_eq!(packed.len(), 2);
    assert_eq!(repack_subsets(&packed), packed);

    let mut reversed = entries;
    reversed.reverse();
    assert_eq!(repack(reversed), packed, "entry order does not matter");

    let mut shuffled: Vec<EndpointSubset> = packed.iter().rev().cloned().collect();
    for s in &mut shuffled {
        s.addresses.iter_mut().for_each(|list| list.reverse());
        s.not_ready_addresses.iter_mut().for_each(|list| list.reverse());
        s.ports.iter_mut().for_each(|list| list.reverse());
    }
    assert_ne!(
        shuffled, packed,
        "the shuffled copy must differ for this check to mean anything"
    );
    assert_eq!(repack_subsets(&shuffled), packed);
}
