//! Upstream's `trafficdist_test.go` cases, plus `PreferSameZone` and
//! `PreferSameNode`, in our own data.

use super::*;
use crate::test_support::{endpoint_at, hinted, not_ready, slice_of};

fn ep(ip: &str, zone: Option<&str>, node: Option<&str>) -> Endpoint {
    endpoint_at(ip, ip, zone, node)
}

fn zone_hinted(ip: &str, zone: &str, node: &str) -> Endpoint {
    hinted(ep(ip, Some(zone), Some(node)), &[zone], &[])
}

#[test]
fn valid_values() {
    for value in ["PreferClose", "PreferSameZone", "PreferSameNode"] {
        assert!(valid_traffic_distribution(Some(value)), "{value}");
    }
    for value in [None, Some(""), Some("preferclose"), Some("ImplementationSpecific")] {
        assert!(!valid_traffic_distribution(value), "{value:?}");
    }
}

#[test]
fn prefer_close_hints_ready_endpoints_of_creates_and_updates_for_their_zone() {
    let si = SliceInfo {
        to_create: vec![
            slice_of(
                "",
                vec![
                    ep("10.0.0.1", Some("zone-a"), Some("node-1")),
                    ep("10.0.0.2", Some("zone-b"), Some("node-2")),
                ],
            ),
            slice_of("", vec![ep("10.0.0.3", Some("zone-a"), Some("node-3"))]),
        ],
        to_update: vec![slice_of(
            "u",
            vec![
                ep("10.0.0.5", Some("zone-a"), Some("node-5")),
                ep("10.0.0.8", Some("zone-c"), Some("node-8")),
            ],
        )],
        unchanged: vec![],
    };
    let got = reconcile_hints(Some(PREFER_CLOSE), si);
    assert_eq!(
        got.to_create,
        [
            slice_of(
                "",
                vec![
                    zone_hinted("10.0.0.1", "zone-a", "node-1"),
                    zone_hinted("10.0.0.2", "zone-b", "node-2")
                ]
            ),
            slice_of("", vec![zone_hinted("10.0.0.3", "zone-a", "node-3")]),
        ]
    );
    assert_eq!(
        got.to_update,
        [slice_of(
            "u",
            vec![
                zone_hinted("10.0.0.5", "zone-a", "node-5"),
                zone_hinted("10.0.0.8", "zone-c", "node-8")
            ]
        )]
    );
}

#[test]
fn prefer_close_corrects_wrong_hints_including_unchanged_slices() {
    let wrong = slice_of(
        "wrong",
        vec![hinted(ep("10.0.0.2", Some("zone-b"), Some("node-2")), &["zone-c"], &[])],
    );
    let missing = slice_of("missing", vec![ep("10.0.0.3", Some("zone-c"), Some("node-3"))]);
    let right = slice_of("right", vec![zone_hinted("10.0.0.4", "zone-a", "node-4")]);
    let si = SliceInfo {
        to_update: vec![slice_of(
            "u",
            vec![hinted(ep("10.0.0.1", Some("zone-a"), Some("node-1")), &["zone-b"], &[])],
        )],
        unchanged: vec![&wrong, &missing, &right],
        ..SliceInfo::default()
    };
    let got = reconcile_hints(Some(PREFER_CLOSE), si);
    assert_eq!(got.unchanged, [&right]);
    assert_eq!(
        got.to_update,
        [
            slice_of("u", vec![zone_hinted("10.0.0.1", "zone-a", "node-1")]),
            slice_of("wrong", vec![zone_hinted("10.0.0.2", "zone-b", "node-2")]),
            slice_of("missing", vec![zone_hinted("10.0.0.3", "zone-c", "node-3")]),
        ]
    );
    assert_eq!(
        endpoints(&wrong)[0].hints,
        hinted(ep("x", None, None), &["zone-c"], &[]).hints
    );
}

#[test]
fn not_ready_endpoints_neither_trigger_updates_nor_lose_stale_hints() {
    let quiet = slice_of("quiet", vec![not_ready(ep("10.0.0.2", Some("zone-b"), Some("node-2")))]);
    let si = SliceInfo {
        to_update: vec![slice_of(
            "u",
            vec![not_ready(hinted(
                ep("10.0.0.1", Some("zone-a"), None),
                &["zone-b"],
                &[],
            ))],
        )],
        unchanged: vec![&quiet],
        ..SliceInfo::default()
    };
    let got = reconcile_hints(Some(PREFER_CLOSE), si);
    assert_eq!(got.unchanged, [&quiet]);
    assert_eq!(
        got.to_update,
        [slice_of(
            "u",
            vec![not_ready(hinted(
                ep("10.0.0.1", Some("zone-a"), None),
                &["zone-b"],
                &[]
            ))]
        )]
    );
}

#[test]
fn endpoints_without_zone_get_no_hints_and_stale_zone_hints_are_removed() {
    let stale = slice_of(
        "stale",
        vec![hinted(ep("10.0.0.2", None, Some("node-2")), &["zone-a"], &[])],
    );
    let si = SliceInfo {
        to_create: vec![slice_of("", vec![ep("10.0.0.1", None, Some("node-1"))])],
        unchanged: vec![&stale],
        ..SliceInfo::default()
    };
    let got = reconcile_hints(Some(PREFER_SAME_ZONE), si);
    assert_eq!(
        got.to_create,
        [slice_of("", vec![ep("10.0.0.1", None, Some("node-1"))])]
    );
    assert_eq!(
        got.to_update,
        [slice_of("stale", vec![ep("10.0.0.2", None, Some("node-2"))])]
    );
}

#[test]
fn prefer_same_node_adds_node_hints_and_checks_them() {
    let zone_only = slice_of("zone-only", vec![zone_hinted("10.0.0.2", "zone-b", "node-2")]);
    let both = slice_of(
        "both",
        vec![hinted(
            ep("10.0.0.3", Some("zone-a"), Some("node-3")),
            &["zone-a"],
            &["node-3"],
        )],
    );
    let si = SliceInfo {
        to_create: vec![slice_of(
            "",
            vec![
                ep("10.0.0.1", Some("zone-a"), Some("node-1")),
                ep("10.0.0.4", None, Some("node-4")),
            ],
        )],
        unchanged: vec![&zone_only, &both],
        ..SliceInfo::default()
    };
    let got = reconcile_hints(Some(PREFER_SAME_NODE), si);
    assert_eq!(
        got.to_create,
        [slice_of(
            "",
            vec![
                hinted(ep("10.0.0.1", Some("zone-a"), Some("node-1")), &["zone-a"], &["node-1"]),
                hinted(ep("10.0.0.4", None, Some("node-4")), &[], &["node-4"]),
            ]
        )]
    );
    assert_eq!(got.unchanged, [&both]);
    assert_eq!(
        got.to_update,
        [slice_of(
            "zone-only",
            vec![hinted(
                ep("10.0.0.2", Some("zone-b"), Some("node-2")),
                &["zone-b"],
                &["node-2"]
            )]
        )]
    );
}

#[test]
fn node_hints_are_stale_under_prefer_close() {
    let with_node = slice_of(
        "with-node",
        vec![hinted(
            ep("10.0.0.3", Some("zone-a"), Some("node-3")),
            &["zone-a"],
            &["node-3"],
        )],
    );
    let got = reconcile_hints(
        Some(PREFER_CLOSE),
        SliceInfo {
            unchanged: vec![&with_node],
            ..SliceInfo::default()
        },
    );
    assert_eq!(
        got.to_update,
        [slice_of("with-node", vec![zone_hinted("10.0.0.3", "zone-a", "node-3")])]
    );
}

#[test]
fn unknown_or_unset_values_remove_all_hints() {
    for value in [Some("Unknown"), None] {
        let hinted_unchanged = slice_of("h", vec![zone_hinted("10.0.0.6", "zone-b", "node-6")]);
        let plain_unchanged = slice_of("p", vec![ep("10.0.0.7", Some("zone-b"), None)]);
        let si = SliceInfo {
            to_create: vec![slice_of("", vec![zone_hinted("10.0.0.1", "zone-a", "node-1")])],
            to_update: vec![slice_of(
                "u",
                vec![not_ready(zone_hinted("10.0.0.5", "zone-a", "node-5"))],
            )],
            unchanged: vec![&hinted_unchanged, &plain_unchanged],
        };
        let got = reconcile_hints(value, si);
        assert_eq!(
            got.to_create,
            [slice_of("", vec![ep("10.0.0.1", Some("zone-a"), Some("node-1"))])],
            "{value:?}"
        );
        assert_eq!(
            got.to_update,
            [
                slice_of("u", vec![not_ready(ep("10.0.0.5", Some("zone-a"), Some("node-5")))]),
                slice_of("h", vec![ep("10.0.0.6", Some("zone-b"), Some("node-6"))]),
            ],
            "{value:?}"
        );
        assert_eq!(got.unchanged, [&plain_unchanged], "{value:?}");
    }
}

#[test]
fn unchanged_slices_are_never_modified() {
    let original = slice_of("o", vec![ep("10.0.0.1", Some("zone-a"), Some("node-1"))]);
    let copy = original.clone();
    let got = reconcile_hints(
        Some(PREFER_CLOSE),
        SliceInfo {
            unchanged: vec![&original],
            ..SliceInfo::default()
        },
    );
    assert_eq!(original, copy);
    assert_eq!(got.to_update.len(), 1);
}
