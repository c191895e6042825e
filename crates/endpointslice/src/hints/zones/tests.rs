//! Upstream's `Test_redistributeHints`, `Test_getGivingAndReceivingZones`,
//! `Test_getHintsByZone` and the allocation and overload rules, in our own
//! data.

use super::*;
use crate::test_support::{endpoint_at, hinted, not_ready, slice_of, zone_hints};

fn counts(pairs: &[(&str, i64)]) -> ZoneCounts {
    pairs.iter().map(|(z, n)| ((*z).to_owned(), *n)).collect()
}

fn ratios(pairs: &[(&str, f64)]) -> ZoneRatios {
    pairs.iter().map(|(z, r)| ((*z).to_owned(), *r)).collect()
}

fn desired_only(pairs: &[(&str, f64)]) -> BTreeMap<String, Allocation> {
    pairs
        .iter()
        .map(|(z, d)| {
            (
                (*z).to_owned(),
                Allocation {
                    minimum: 0,
                    maximum: 0,
                    desired: *d,
                },
            )
        })
        .collect()
}

fn maximum_only(pairs: &[(&str, i64)]) -> BTreeMap<String, Allocation> {
    pairs
        .iter()
        .map(|(z, m)| {
            (
                (*z).to_owned(),
                Allocation {
                    minimum: 0,
                    maximum: *m,
                    desired: 0.0,
                },
            )
        })
        .collect()
}

#[test]
fn giving_and_receiving_zones() {
    type Case = (
        &'static str,
        Vec<(&'static str, f64)>,
        Vec<(&'static str, i64)>,
        Vec<(&'static str, i64)>,
        Vec<(&'static str, i64)>,
    );
    let cases: Vec<Case> = vec![
        ("empty", vec![], vec![], vec![], vec![]),
        (
            "balanced enough: no moves",
            vec![("zone-a", 1.2), ("zone-b", 1.1), ("zone-c", 1.0)],
            vec![("zone-a", 1), ("zone-b", 1), ("zone-c", 1)],
            vec![],
            vec![],
        ),
        (
            "same zone preferred even if one more move would balance slightly better",
            vec![("zone-a", 5.1), ("zone-b", 5.1), ("zone-c", 5.8)],
            vec![("zone-a", 16)],
            vec![("zone-a", 10)],
            vec![("zone-b", 5), ("zone-c", 5)],
        ),
        (
            "when two zones need less than one, the neediest gets it",
            vec![("zone-a", 5.0), ("zone-b", 5.6), ("zone-c", 5.4)],
            vec![("zone-a", 16)],
            vec![("zone-a", 11)],
            vec![("zone-b", 6), ("zone-c", 5)],
        ),
        (
            "when two zones have extra, the richest gives first",
            vec![("zone-a", 5.0), ("zone-b", 5.6), ("zone-c", 5.4)],
            vec![("zone-b", 8), ("zone-c", 8)],
            vec![("zone-b", 2), ("zone-c", 3)],
            vec![("zone-a", 5)],
        ),
        (
            "equal needs: the zone first in name order receives",
            vec![("zone-a", 1.0), ("zone-b", 1.0), ("zone-c", 1.0)],
            vec![("zone-c", 2)],
            vec![("zone-c", 1)],
            vec![("zone-a", 1)],
        ),
        (
            "more allocated than desired everywhere",
            vec![("zone-a", 5.0), ("zone-b", 5.0), ("zone-c", 5.0)],
            vec![("zone-a", 6), ("zone-b", 6), ("zone-c", 6)],
            vec![],
            vec![],
        ),
        (
            "negative desired",
            vec![("zone-a", -5.0), ("zone-b", -5.0), ("zone-c", -5.0)],
            vec![("zone-a", 6), ("zone-b", 6), ("zone-c", 6)],
            vec![],
            vec![],
        ),
        (
            "negative allocated",
            vec![("zone-a", 5.0), ("zone-b", 5.0), ("zone-c", 5.0)],
            vec![("zone-a", -4), ("zone-b", -3), ("zone-c", -2)],
            vec![],
            vec![],
        ),
        (
            "negative allocated in one zone",
            vec![("zone-a", 5.0), ("zone-b", 5.0), ("zone-c", 5.0)],
            vec![("zone-a", -40), ("zone-b", 20), ("zone-c", 20)],
            vec![("zone-b", 15), ("zone-c", 15)],
            vec![("zone-a", 30)],
        ),
    ];
    for (name, desired, allocated, giving, receiving) in cases {
        let (got_giving, got_receiving) = giving_and_receiving(&desired_only(&desired), &counts(&allocated));
        assert_eq!(got_giving, counts(&giving), "{name}: giving");
        assert_eq!(got_receiving, counts(&receiving), "{name}: receiving");
    }
}

fn zone_a_endpoints(n: usize) -> Vec<EndpointSlice> {
    vec![slice_of(
        "s",
        (0..n)
            .map(|i| {
                hinted(
                    endpoint_at(&format!("p{i}"), &format!("10.0.0.{i}"), Some("zone-a"), None),
                    &["zone-a"],
                    &[],
                )
            })
            .collect(),
    )]
}

#[test]
fn redistribute_moves_hints_in_endpoint_order() {
    let mut none: Vec<EndpointSlice> = Vec::new();
    assert_eq!(redistribute(&mut none, counts(&[]), counts(&[])), counts(&[]));

    let mut one = zone_a_endpoints(1);
    let changes = redistribute(&mut one, counts(&[("zone-a", 1)]), counts(&[("zone-b", 1)]));
    assert_eq!(changes, counts(&[("zone-a", -1), ("zone-b", 1)]));
    assert_eq!(zone_hints(&endpoints(&one[0])[0]), ["zone-b"]);

    let mut three = zone_a_endpoints(3);
    let changes = redistribute(
        &mut three,
        counts(&[("zone-a", 2)]),
        counts(&[("zone-b", 1), ("zone-c", 1)]),
    );
    assert_eq!(changes, counts(&[("zone-a", -2), ("zone-b", 1), ("zone-c", 1)]));
    let hints: Vec<_> = endpoints(&three[0]).iter().map(zone_hints).collect();
    assert_eq!(hints, [vec!["zone-b"], vec!["zone-c"], vec!["zone-a"]]);
}

#[test]
fn redistribute_skips_not_ready_endpoints_and_zones_not_giving() {
    let mut slices = vec![slice_of(
        "s",
        vec![
            not_ready(endpoint_at("u", "10.0.0.1", Some("zone-a"), None)),
            endpoint_at("b", "10.0.0.2", Some("zone-b"), None),
            endpoint_at("a", "10.0.0.3", Some("zone-a"), None),
        ],
    )];
    let changes = redistribute(&mut slices, counts(&[("zone-a", 1)]), counts(&[("zone-c", 1)]));
    assert_eq!(changes, counts(&[("zone-a", -1), ("zone-c", 1)]));
    let list = endpoints(&slices[0]);
    assert!(list[0].hints.is_none() && list[1].hints.is_none());
    assert_eq!(zone_hints(&list[2]), ["zone-c"]);
}

#[test]
fn hints_by_zone_of_unchanged_slices() {
    let ready_hint = |zone: &str, hint: &str| hinted(endpoint_at("p", "10.0.0.1", Some(zone), None), &[hint], &[]);
    type Case = (
        &'static str,
        Vec<k8s_openapi::api::discovery::v1::Endpoint>,
        Vec<(&'static str, i64)>,
        Vec<(&'static str, i64)>,
        Option<Vec<(&'static str, i64)>>,
    );
    let mut unknown_readiness = ready_hint("zone-a", "zone-a");
    unknown_readiness.conditions = None;
    let mut empty_hints = endpoint_at("p", "10.0.0.1", Some("zone-a"), None);
    empty_hints.hints = Some(EndpointHints {
        for_zones: Some(vec![]),
        for_nodes: None,
    });
    let cases: Vec<Case> = vec![
        ("empty", vec![], vec![], vec![], Some(vec![])),
        (
            "one zone hint",
            vec![ready_hint("zone-a", "zone-a")],
            vec![("zone-a", 3)],
            vec![("zone-a", 1)],
            Some(vec![("zone-a", 1)]),
        ),
        (
            "not ready and unknown-readiness endpoints are not counted",
            vec![
                ready_hint("zone-a", "zone-a"),
                not_ready(ready_hint("zone-a", "zone-a")),
                unknown_readiness,
            ],
            vec![("zone-a", 3)],
            vec![("zone-a", 1)],
            Some(vec![("zone-a", 1)]),
        ),
        (
            "several zones",
            vec![
                ready_hint("zone-a", "zone-a"),
                ready_hint("zone-a", "zone-b"),
                ready_hint("zone-b", "zone-b"),
            ],
            vec![("zone-a", 3), ("zone-b", 3), ("zone-c", 3)],
            vec![("zone-a", 1), ("zone-b", 1), ("zone-c", 1)],
            Some(vec![("zone-a", 1), ("zone-b", 2)]),
        ),
        (
            "hint for a zone without allocation",
            vec![ready_hint("zone-a", "zone-gone")],
            vec![("zone-a", 3)],
            vec![("zone-a", 1)],
            None,
        ),
        (
            "ready endpoint without hints",
            vec![endpoint_at("p", "10.0.0.1", Some("zone-a"), None)],
            vec![("zone-a", 3)],
            vec![],
            None,
        ),
        (
            "ready endpoint with empty zone hints",
            vec![empty_hints],
            vec![("zone-a", 3)],
            vec![],
            None,
        ),
        (
            "hints beyond the zone's maximum",
            vec![ready_hint("zone-a", "zone-a"), ready_hint("zone-a", "zone-a")],
            vec![("zone-a", 2)],
            vec![("zone-a", 1)],
            None,
        ),
    ];
    for (name, list, maxima, allocated, want) in cases {
        let slice = slice_of("s", list);
        let got = hints_by_zone(&slice, &counts(&allocated), &maximum_only(&maxima));
        assert_eq!(got, want.map(|w| counts(&w)), "{name}");
    }
}

#[test]
fn allocations_and_why_they_fail() {
    assert_eq!(allocations(None, 5), Err(INSUFFICIENT_NODE_INFO.to_owned()));
    assert_eq!(
        allocations(Some(&ratios(&[])), 5),
        Err(NODES_READY_IN_ONE_ZONE_ONLY.to_owned())
    );
    assert_eq!(
        allocations(Some(&ratios(&[("zone-a", 1.0)])), 5),
        Err(NODES_READY_IN_ONE_ZONE_ONLY.to_owned())
    );
    let three = ratios(&[("zone-a", 0.3), ("zone-b", 0.4), ("zone-c", 0.3)]);
    assert_eq!(
        allocations(Some(&three), 2),
        Err("Insufficient number of endpoints (2 endpoints, 3 zones)".to_owned())
    );
    // 4 endpoints over 3 equal zones: each needs ceil(1.33 / 1.2) = 2.
    let equal = ratios(&[("zone-a", 1.0 / 3.0), ("zone-b", 1.0 / 3.0), ("zone-c", 1.0 / 3.0)]);
    assert_eq!(
        allocations(Some(&equal), 4),
        Err(
            "Unable to allocate minimum required endpoints to each zone without exceeding overload threshold \
             (4 endpoints, 3 zones)"
                .to_owned()
        )
    );
    let got = allocations(Some(&ratios(&[("zone-a", 0.45), ("zone-b", 0.55)])), 10).unwrap();
    // desired 4.5 → min ceil(3.75) = 4; desired 5.5 → min ceil(4.58) = 5;
    // one endpoint to spare: max = min + 1.
    assert_eq!(
        got["zone-a"],
        Allocation {
            minimum: 4,
            maximum: 5,
            desired: 4.5
        }
    );
    assert_eq!(
        got["zone-b"],
        Allocation {
            minimum: 5,
            maximum: 6,
            desired: 5.5
        }
    );
}

#[test]
#[allow(clippy::float_cmp)] // exact by construction
fn desired_is_raised_to_the_minimum() {
    // ratio 0.1 of 10 endpoints: desired 1.0, minimum ceil(0.833) = 1.
    let got = allocations(Some(&ratios(&[("small", 0.1), ("big", 0.9)])), 10).unwrap();
    assert_eq!(got["small"].desired, 1.0);
    assert_eq!(got["small"].minimum, 1);
}

#[test]
fn service_overload() {
    let even = ratios(&[("zone-a", 0.5), ("zone-b", 0.5)]);
    assert!(!service_overloaded(&counts(&[]), None), "no hints, never overloaded");
    assert!(service_overloaded(&counts(&[("zone-a", 2)]), None));
    assert!(service_overloaded(&counts(&[("zone-a", 2)]), Some(&ratios(&[]))));
    assert!(
        service_overloaded(&counts(&[("zone-a", 4)]), Some(&even)),
        "zone-b has none"
    );
    assert!(!service_overloaded(
        &counts(&[("zone-a", 2), ("zone-b", 2)]),
        Some(&even)
    ));
    // 10 hints, zone-b needs ceil(5 / 1.2) = 5.
    assert!(service_overloaded(
        &counts(&[("zone-a", 6), ("zone-b", 4)]),
        Some(&even)
    ));
    assert!(!service_overloaded(
        &counts(&[("zone-a", 5), ("zone-b", 5)]),
        Some(&even)
    ));
}
