//! Upstream's `TestAddHints`, `TestSetNodes` and `TestTopologyCacheRace`,
//! plus the overload re-queue, in our own data.

use std::sync::Arc;

use super::*;
use crate::hints::{INSUFFICIENT_NODE_INFO, REASON_HINTS_DISABLED};
use crate::test_support::{endpoint_at, hinted, node, not_ready, slice_of, web, zone_hints};
use ecm_controller::EventType;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};

fn ratios(pairs: &[(&str, f64)]) -> ZoneRatios {
    pairs.iter().map(|(z, r)| ((*z).to_owned(), *r)).collect()
}

fn counts(pairs: &[(&str, i64)]) -> ZoneCounts {
    pairs.iter().map(|(z, n)| ((*z).to_owned(), *n)).collect()
}

fn snapshot(pairs: Option<&[(&str, f64)]>) -> TopologySnapshot {
    TopologySnapshot {
        ratios: pairs.map(ratios),
        hints_populated: false,
    }
}

fn at(ip: &str, zone: &str) -> Endpoint {
    endpoint_at(ip, ip, Some(zone), None)
}

/// The zone hint of every endpoint of every slice, in order (`-` for none).
fn hint_table(slices: &[EndpointSlice]) -> Vec<Vec<String>> {
    slices
        .iter()
        .map(|s| {
            endpoints(s)
                .iter()
                .map(|e| zone_hints(e).first().map_or("-".to_owned(), |z| (*z).to_owned()))
                .collect()
        })
        .collect()
}

#[test]
fn no_node_information_removes_hints_with_an_event() {
    let si = SliceInfo {
        to_create: vec![slice_of("", vec![hinted(at("10.1.2.3", "zone-a"), &["zone-a"], &[])])],
        ..SliceInfo::default()
    };
    let outcome = add_hints(&snapshot(None), "IPv4", si);
    assert_eq!(outcome.change, CacheChange::Remove);
    assert_eq!(hint_table(&outcome.slices.to_create), [["-"]]);
    assert_eq!(
        outcome.events,
        [HintsEvent {
            event_type: EventType::Warning,
            reason: REASON_HINTS_DISABLED,
            message: format!("{INSUFFICIENT_NODE_INFO}, addressType: IPv4"),
        }]
    );
}

#[test]
fn nothing_at_all_is_insufficient_node_information_too() {
    let outcome = add_hints(&snapshot(None), "IPv4", SliceInfo::default());
    assert_eq!(outcome.change, CacheChange::Remove);
    assert_eq!(outcome.events.len(), 1);
    assert!(outcome.events[0].message.starts_with(INSUFFICIENT_NODE_INFO));
}

#[test]
fn before_any_node_data_the_ratios_are_empty_and_one_zone_is_reported() {
    let si = SliceInfo {
        to_create: vec![slice_of("", vec![at("10.1.2.3", "zone-a"), at("10.1.2.4", "zone-b")])],
        ..SliceInfo::default()
    };
    let outcome = add_hints(&TopologySnapshot::default(), "IPv6", si);
    assert_eq!(
        outcome.events[0].message,
        "Nodes only ready in one zone, addressType: IPv6"
    );
}

#[test]
fn fewer_endpoints_than_zones_disables_hints() {
    let si = SliceInfo {
        to_create: vec![slice_of("", vec![at("10.1.2.3", "zone-a"), at("10.1.2.4", "zone-b")])],
        ..SliceInfo::default()
    };
    let outcome = add_hints(
        &snapshot(Some(&[("zone-a", 0.3), ("zone-b", 0.4), ("zone-c", 0.3)])),
        "IPv4",
        si,
    );
    assert_eq!(outcome.change, CacheChange::Remove);
    assert_eq!(
        outcome.events[0].message,
        "Insufficient number of endpoints (2 endpoints, 3 zones), addressType: IPv4"
    );
    assert_eq!(hint_table(&outcome.slices.to_create), [["-", "-"]]);
}

#[test]
fn two_endpoints_two_zones_each_hinted_for_its_own_zone() {
    let si = SliceInfo {
        to_create: vec![slice_of("", vec![at("10.1.2.3", "zone-a"), at("10.1.2.4", "zone-b")])],
        ..SliceInfo::default()
    };
    let outcome = add_hints(&snapshot(Some(&[("zone-a", 0.45), ("zone-b", 0.55)])), "IPv4", si);
    assert_eq!(hint_table(&outcome.slices.to_create), [["zone-a", "zone-b"]]);
    assert_eq!(
        outcome.change,
        CacheChange::Set(counts(&[("zone-a", 1), ("zone-b", 1)]))
    );
    assert_eq!(outcome.events, [HintsEvent::enabled("IPv4")]);
}

#[test]
fn not_ready_endpoints_are_not_counted_and_keep_their_hints() {
    let mut unknown = at("10.1.2.6", "zone-b");
    unknown.conditions = None;
    let si = SliceInfo {
        to_create: vec![slice_of(
            "",
            vec![
                at("10.1.2.3", "zone-a"),
                at("10.1.2.4", "zone-b"),
                not_ready(hinted(at("10.1.2.5", "zone-b"), &["zone-a"], &[])),
                unknown,
            ],
        )],
        ..SliceInfo::default()
    };
    let outcome = add_hints(&snapshot(Some(&[("zone-a", 0.45), ("zone-b", 0.55)])), "IPv4", si);
    assert_eq!(
        hint_table(&outcome.slices.to_create),
        [["zone-a", "zone-b", "zone-a", "-"]]
    );
    assert_eq!(
        outcome.change,
        CacheChange::Set(counts(&[("zone-a", 1), ("zone-b", 1)]))
    );
}

#[test]
fn creates_and_updates_over_three_zones_give_the_first_surplus_endpoint_away() {
    let si = SliceInfo {
        to_create: vec![
            slice_of("", vec![at("10.1.2.3", "zone-a"), at("10.1.2.4", "zone-b")]),
            slice_of(
                "",
                vec![
                    at("10.1.3.3", "zone-c"),
                    at("10.1.3.4", "zone-c"),
                    at("10.1.3.5", "zone-a"),
                ],
            ),
        ],
        to_update: vec![
            slice_of("u1", vec![at("10.2.2.3", "zone-a"), at("10.2.2.4", "zone-a")]),
            slice_of(
                "u2",
                vec![
                    at("10.2.3.3", "zone-b"),
                    at("10.2.3.4", "zone-c"),
                    at("10.2.3.5", "zone-a"),
                ],
            ),
        ],
        unchanged: vec![],
    };
    let outcome = add_hints(
        &snapshot(Some(&[("zone-a", 0.35), ("zone-b", 0.35), ("zone-c", 0.30)])),
        "IPv4",
        si,
    );
    assert_eq!(
        hint_table(&outcome.slices.to_create),
        [vec!["zone-b", "zone-b"], vec!["zone-c", "zone-c", "zone-a"]]
    );
    assert_eq!(
        hint_table(&outcome.slices.to_update),
        [vec!["zone-a", "zone-a"], vec!["zone-b", "zone-c", "zone-a"]]
    );
    assert_eq!(
        outcome.change,
        CacheChange::Set(counts(&[("zone-a", 4), ("zone-b", 3), ("zone-c", 3)]))
    );
}

#[test]
fn unchanged_slices_with_fitting_hints_stay_unchanged_and_count() {
    let good = slice_of(
        "good",
        vec![
            hinted(at("10.0.0.1", "zone-a"), &["zone-a"], &[]),
            hinted(at("10.0.0.2", "zone-b"), &["zone-b"], &[]),
        ],
    );
    let unhinted = slice_of("unhinted", vec![at("10.0.0.3", "zone-a"), at("10.0.0.4", "zone-b")]);
    let si = SliceInfo {
        unchanged: vec![&good, &unhinted],
        ..SliceInfo::default()
    };
    let outcome = add_hints(
        &TopologySnapshot {
            ratios: Some(ratios(&[("zone-a", 0.5), ("zone-b", 0.5)])),
            hints_populated: true,
        },
        "IPv4",
        si,
    );
    assert_eq!(outcome.slices.unchanged, [&good]);
    assert_eq!(hint_table(&outcome.slices.to_update), [["zone-a", "zone-b"]]);
    assert_eq!(outcome.slices.to_update[0].metadata.name.as_deref(), Some("unhinted"));
    assert_eq!(
        outcome.change,
        CacheChange::Set(counts(&[("zone-a", 2), ("zone-b", 2)]))
    );
    assert!(outcome.events.is_empty(), "hints were already populated");
    assert!(
        endpoints(&unhinted)[0].hints.is_none(),
        "the cached slice is not modified"
    );
}

#[test]
fn a_ready_endpoint_without_zone_disables_hints() {
    let si = SliceInfo {
        to_create: vec![slice_of(
            "",
            vec![at("10.0.0.1", "zone-a"), endpoint_at("x", "10.0.0.2", None, None)],
        )],
        ..SliceInfo::default()
    };
    let outcome = add_hints(&snapshot(Some(&[("zone-a", 0.5), ("zone-b", 0.5)])), "IPv4", si);
    assert_eq!(outcome.change, CacheChange::Remove);
    assert_eq!(hint_table(&outcome.slices.to_create), [["-", "-"]]);
    assert_eq!(
        outcome.events[0].message,
        "One or more endpoints do not have a zone specified, addressType: IPv4"
    );
}

fn worker(name: &str, zone: Option<&str>, cpu: &str) -> Node {
    node(name, zone, cpu)
}

fn control_plane(mut node: Node) -> Node {
    node.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(LABEL_NODE_ROLE_CONTROL_PLANE.to_owned(), String::new());
    node
}

fn master(mut node: Node) -> Node {
    node.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(LABEL_NODE_ROLE_MASTER.to_owned(), "true".to_owned());
    node
}

fn unready(mut node: Node) -> Node {
    if let Some(conditions) = node.status.as_mut().and_then(|s| s.conditions.as_mut()) {
        conditions[0].status = "False".to_owned();
    }
    node
}

#[test]
fn set_nodes_table() {
    type Case = (
        &'static str,
        Vec<Node>,
        Option<Vec<(&'static str, i64)>>,
        Option<Vec<(&'static str, f64)>>,
    );
    let cases: Vec<Case> = vec![
        ("no nodes", vec![], None, None),
        ("one node", vec![worker("a", Some("zone-a"), "1")], None, None),
        (
            "one zone",
            vec![worker("a", Some("zone-a"), "1"), worker("b", Some("zone-a"), "1")],
            None,
            None,
        ),
        (
            "two zones",
            vec![worker("a", Some("zone-a"), "1"), worker("b", Some("zone-b"), "1000m")],
            Some(vec![("zone-a", 1000), ("zone-b", 1000)]),
            Some(vec![("zone-a", 0.5), ("zone-b", 0.5)]),
        ),
        (
            "two zones, the only node of one not ready",
            vec![
                unready(worker("a", Some("zone-a"), "1")),
                worker("b", Some("zone-b"), "1"),
            ],
            None,
            None,
        ),
        (
            "two zones, the only node of one control plane",
            vec![
                worker("a", Some("zone-a"), "1"),
                control_plane(worker("b", Some("zone-b"), "1")),
            ],
            None,
            None,
        ),
        (
            "legacy master label excludes too",
            vec![
                worker("a", Some("zone-a"), "1"),
                master(worker("b", Some("zone-b"), "1")),
            ],
            None,
            None,
        ),
        (
            "unready node beside ready ones is ignored",
            vec![
                worker("a", Some("zone-a"), "1"),
                worker("b", Some("zone-b"), "1"),
                unready(worker("c", Some("zone-b"), "1")),
            ],
            Some(vec![("zone-a", 1000), ("zone-b", 1000)]),
            Some(vec![("zone-a", 0.5), ("zone-b", 0.5)]),
        ),
        (
            "control plane beside workers is ignored",
            vec![
                worker("a", Some("zone-a"), "1"),
                worker("b", Some("zone-b"), "1"),
                control_plane(worker("c", Some("zone-b"), "1")),
            ],
            Some(vec![("zone-a", 1000), ("zone-b", 1000)]),
            Some(vec![("zone-a", 0.5), ("zone-b", 0.5)]),
        ),
        (
            "three zones, uneven",
            vec![
                worker("a1", Some("zone-a"), "1000m"),
                worker("a2", Some("zone-a"), "1000m"),
                worker("a3", Some("zone-a"), "1000m"),
                worker("a4", Some("zone-a"), "2000m"),
                worker("b1", Some("zone-b"), "3000m"),
                worker("b2", Some("zone-b"), "1500m"),
                worker("c1", Some("zone-c"), "500m"),
            ],
            Some(vec![("zone-a", 5000), ("zone-b", 4500), ("zone-c", 500)]),
            Some(vec![("zone-a", 0.5), ("zone-b", 0.45), ("zone-c", 0.05)]),
        ),
        (
            "a ready worker without zone spoils everything",
            vec![
                worker("a", Some("zone-a"), "1"),
                worker("b", Some("zone-b"), "1"),
                worker("x", None, "1"),
            ],
            None,
            None,
        ),
        (
            "a ready worker with an empty zone spoils everything",
            vec![
                worker("a", Some("zone-a"), "1"),
                worker("b", Some("zone-b"), "1"),
                worker("x", Some(""), "1"),
            ],
            None,
            None,
        ),
        (
            "a ready worker without CPU spoils everything",
            vec![
                worker("a", Some("zone-a"), "1"),
                worker("b", Some("zone-b"), "1"),
                worker("x", Some("zone-c"), "0"),
            ],
            None,
            None,
        ),
    ];
    for (name, nodes, cpu, want) in cases {
        let cache = TopologyCache::new();
        cache.set_nodes(&nodes);
        assert_eq!(cache.sufficient_node_info(), want.is_some(), "{name}: sufficient");
        assert_eq!(
            cache.cpu_by_zone(),
            cpu.map(|c| c.iter().map(|(z, m)| ((*z).to_owned(), *m)).collect()),
            "{name}: cpu"
        );
        assert_eq!(cache.zone_ratios(), want.map(|w| ratios(&w)), "{name}: ratios");
    }
}

#[test]
fn a_fresh_cache_has_empty_ratios_not_none() {
    let cache = TopologyCache::new();
    assert_eq!(cache.zone_ratios(), Some(ZoneRatios::new()));
    assert_eq!(cache.snapshot(&web()), TopologySnapshot::default());
}

#[test]
fn cache_add_hints_records_and_remove_forgets() {
    let cache = TopologyCache::new();
    cache.set_nodes(&[worker("a", Some("zone-a"), "1"), worker("b", Some("zone-b"), "1")]);
    let si = SliceInfo {
        to_create: vec![slice_of("", vec![at("10.0.0.1", "zone-a"), at("10.0.0.2", "zone-b")])],
        ..SliceInfo::default()
    };
    let (_, events) = cache.add_hints(&web(), "IPv4", si.clone());
    assert_eq!(events, [HintsEvent::enabled("IPv4")]);
    assert!(cache.has_populated_hints(&web()));
    assert_eq!(
        cache.hints(&web(), "IPv4"),
        Some(counts(&[("zone-a", 1), ("zone-b", 1)]))
    );
    let (_, events) = cache.add_hints(&web(), "IPv4", si);
    assert!(events.is_empty(), "enabled is announced once");

    cache.set_hints(&web(), "IPv6", counts(&[("zone-a", 1)]));
    cache.remove_hints(&web(), "IPv4");
    assert!(
        !cache.has_populated_hints(&web()),
        "removal clears the flag for the whole service"
    );
    assert_eq!(cache.hints(&web(), "IPv6"), Some(counts(&[("zone-a", 1)])));
    cache.remove_hints(&web(), "IPv6");
    assert_eq!(cache.hints(&web(), "IPv6"), None);
}

#[test]
fn overloaded_services_after_the_nodes_change() {
    let cache = TopologyCache::new();
    let even = [worker("a", Some("zone-a"), "1"), worker("b", Some("zone-b"), "1")];
    cache.set_nodes(&even);
    let balanced = ObjectKey::new("ns", "balanced");
    let lopsided = ObjectKey::new("ns", "lopsided");
    cache.set_hints(&balanced, "IPv4", counts(&[("zone-a", 5), ("zone-b", 5)]));
    cache.set_hints(&lopsided, "IPv4", counts(&[("zone-a", 6), ("zone-b", 4)]));
    assert_eq!(cache.overloaded_services(), std::slice::from_ref(&lopsided));

    // zone-b grows to 3/4 of the CPU: the balanced service is now short there.
    cache.set_nodes(&[worker("a", Some("zone-a"), "1"), worker("b", Some("zone-b"), "3")]);
    assert_eq!(cache.overloaded_services(), [balanced.clone(), lopsided.clone()]);

    // Without usable node data every service with hints is overloaded.
    cache.set_nodes(&[worker("a", Some("zone-a"), "1")]);
    assert_eq!(cache.overloaded_services(), [balanced, lopsided]);
}

#[test]
fn set_nodes_and_add_hints_may_run_concurrently() {
    let cache = Arc::new(TopologyCache::new());
    let nodes = vec![worker("a", Some("zone-a"), "1"), worker("b", Some("zone-b"), "1")];
    let writer = {
        let cache = Arc::clone(&cache);
        std::thread::spawn(move || {
            for _ in 0..200 {
                cache.set_nodes(&nodes);
            }
        })
    };
    for _ in 0..200 {
        let si = SliceInfo {
            to_create: vec![slice_of("", vec![at("10.0.0.1", "zone-a"), at("10.0.0.2", "zone-b")])],
            ..SliceInfo::default()
        };
        let (slices, _) = cache.add_hints(&web(), "IPv4", si);
        let table = hint_table(&slices.to_create);
        assert!(table == [["zone-a", "zone-b"]] || table == [["-", "-"]], "{table:?}");
    }
    writer.join().unwrap();
}
