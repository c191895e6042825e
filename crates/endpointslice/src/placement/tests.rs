//! Placement of one port group: the packing rules of upstream's
//! `reconcileByPortMapping` and `getSliceToFill`, pinned with the numbers of
//! upstream's reconciler tests.

use super::*;
use crate::test_support::{endpoint, not_ready, stored_slice, tcp_port};
use ecm_types::fixtures::service;
use ecm_types::wellknown::LABEL_HEADLESS;

fn svc() -> Service {
    service("ns", "web").port("http", 80, 8080).build()
}

fn ports() -> Vec<EndpointPort> {
    vec![tcp_port("http", 8080)]
}

/// Endpoint `i` of the test: pod `p<i>` with an IP derived from `i`.
fn ep(i: usize) -> Endpoint {
    endpoint(
        &format!("p{i:04}"),
        &format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256),
    )
}

fn desired(range: impl IntoIterator<Item = usize>) -> EndpointSet {
    range.into_iter().map(ep).collect()
}

fn existing(name: &str, range: impl IntoIterator<Item = usize>) -> EndpointSlice {
    stored_slice(&svc(), name, &ports(), range.into_iter().map(ep).collect())
}

fn sizes(slices: &[EndpointSlice]) -> Vec<usize> {
    slices.iter().map(endpoint_count).collect()
}

fn names<'s>(slices: impl IntoIterator<Item = &'s EndpointSlice>) -> Vec<&'s str> {
    slices
        .into_iter()
        .map(|s| s.metadata.name.as_deref().unwrap_or_default())
        .collect()
}

#[test]
fn many_new_endpoints_fill_new_slices_to_the_maximum() {
    let p = place(&svc(), IpFamily::V4, &ports(), &[], desired(0..250), 100, &|_| false);
    assert_eq!(sizes(&p.to_create), [100, 100, 50]);
    assert!(p.to_update.is_empty() && p.to_delete.is_empty());
    assert_eq!((p.added, p.removed), (250, 0));
}

#[test]
fn max_endpoints_per_slice_caps_every_new_slice() {
    for (max, want) in [
        (50, vec![50, 50, 50, 50, 50]),
        (80, vec![80, 80, 80, 10]),
        (150, vec![150, 100]),
        (250, vec![250]),
        (500, vec![250]),
    ] {
        let p = place(&svc(), IpFamily::V4, &ports(), &[], desired(0..250), max, &|_| false);
        assert_eq!(sizes(&p.to_create), want, "max {max}");
    }
}

#[test]
fn remainder_goes_to_the_unchanged_slice_closest_to_full() {
    // Upstream's TestReconcileEndpointSlicesSomePreexisting: slices of 62 and
    // 61 current endpoints, 127 new: one new slice of 100, the 27 left join
    // the 62-slice.
    let a = existing("web-a", (0..250).filter(|i| i % 4 == 1).take(62));
    let b = existing("web-b", (0..250).filter(|i| i % 4 == 3).take(61));
    let p = place(&svc(), IpFamily::V4, &ports(), &[&a, &b], desired(0..250), 100, &|_| {
        false
    });
    assert_eq!(sizes(&p.to_create), [100]);
    assert_eq!(names(&p.to_update), ["web-a"]);
    assert_eq!(sizes(&p.to_update), [89]);
    assert_eq!(names(p.unchanged.iter().copied()), ["web-b"]);
    assert_eq!((p.added, p.removed), (127, 0));
}

#[test]
fn remainder_is_never_split_over_existing_slices() {
    // Upstream's ...SomePreexistingWorseAllocation: slices of 74 and 74, 152
    // new: 100 + 52 in new slices, although 52 would fit in the two halves.
    let a = existing("web-a", (0..300).filter(|i| i % 4 == 1).take(74));
    let b = existing("web-b", (0..300).filter(|i| i % 4 == 3).take(74));
    let p = place(&svc(), IpFamily::V4, &ports(), &[&a, &b], desired(0..300), 100, &|_| {
        false
    });
    assert_eq!(sizes(&p.to_create), [100, 52]);
    assert!(p.to_update.is_empty());
    assert_eq!(p.unchanged.len(), 2);
}

#[test]
fn slices_being_updated_are_topped_up_fullest_first() {
    // Upstream's TestReconcileEndpointSlicesUpdatePacking: slices of 80 and
    // 20, one endpoint in each became not ready, 15 new endpoints: all 15 go
    // into the fuller slice.
    let a = existing("web-a", 0..80);
    let b = existing("web-b", 100..120);
    let mut wanted = desired((0..80).chain(100..120).chain(200..215));
    for changed in [ep(0), ep(100)] {
        wanted.insert(not_ready(changed));
    }
    let p = place(&svc(), IpFamily::V4, &ports(), &[&b, &a], wanted, 100, &|_| false);
    assert!(p.to_create.is_empty());
    assert_eq!(names(&p.to_update), ["web-b", "web-a"]);
    assert_eq!(sizes(&p.to_update), [20, 95]);
    assert_eq!((p.added, p.removed), (15, 0));
}

#[test]
fn topping_up_stops_at_the_maximum_and_the_rest_is_created() {
    let a = existing("web-a", 0..8);
    let mut wanted = desired(0..20);
    wanted.insert(not_ready(ep(0)));
    let p = place(&svc(), IpFamily::V4, &ports(), &[&a], wanted, 10, &|_| false);
    assert_eq!(sizes(&p.to_update), [10]);
    assert_eq!(sizes(&p.to_create), [10]);
}

#[test]
fn a_full_remainder_starts_a_new_slice_even_if_an_unchanged_one_could_take_it() {
    // Fewer than the maximum is required to try existing slices.
    let a = existing("web-a", 0..1);
    let p = place(&svc(), IpFamily::V4, &ports(), &[&a], desired(0..11), 10, &|_| false);
    assert_eq!(sizes(&p.to_create), [10]);
    assert!(p.to_update.is_empty());
}

#[test]
fn ties_between_unchanged_slices_go_to_the_first() {
    let a = existing("web-a", 0..5);
    let b = existing("web-b", 5..10);
    let p = place(&svc(), IpFamily::V4, &ports(), &[&a, &b], desired(0..13), 10, &|_| {
        false
    });
    assert_eq!(names(&p.to_update), ["web-a"]);
    assert_eq!(names(p.unchanged.iter().copied()), ["web-b"]);
}

#[test]
fn removed_endpoints_update_or_delete_their_slice() {
    let a = existing("web-a", 0..3);
    let b = existing("web-b", 3..5);
    let p = place(&svc(), IpFamily::V4, &ports(), &[&a, &b], desired(0..2), 100, &|_| {
        false
    });
    assert_eq!(names(&p.to_update), ["web-a"]);
    assert_eq!(sizes(&p.to_update), [2]);
    assert_eq!(names(p.to_delete.iter().copied()), ["web-b"]);
    assert_eq!((p.added, p.removed), (0, 3));
}

#[test]
fn current_slices_need_no_write() {
    let a = existing("web-a", 0..3);
    let p = place(&svc(), IpFamily::V4, &ports(), &[&a], desired(0..3), 100, &|_| false);
    assert_eq!(
        p,
        Placement {
            unchanged: vec![&a],
            ..Placement::default()
        }
    );
}

#[test]
fn a_changed_endpoint_is_written_in_its_desired_version_and_in_place() {
    let a = existing("web-a", 0..3);
    let mut wanted = desired(0..3);
    wanted.insert(not_ready(ep(1)));
    let p = place(&svc(), IpFamily::V4, &ports(), &[&a], wanted, 100, &|_| false);
    let updated = &p.to_update[0];
    assert_eq!(updated.metadata.name.as_deref(), Some("web-a"));
    assert_eq!(
        updated.metadata.resource_version.as_deref(),
        Some("7"),
        "a conditional update"
    );
    let list = endpoints(updated);
    assert_eq!(
        list.iter().map(|e| e.addresses[0].as_str()).collect::<Vec<_>>(),
        ["10.0.0.0", "10.0.0.1", "10.0.0.2"]
    );
    assert_eq!(list[1], not_ready(ep(1)));
}

#[test]
fn a_resource_version_change_of_the_pod_alone_is_no_change() {
    let mut stale_rv = ep(0);
    if let Some(target) = stale_rv.target_ref.as_mut() {
        target.resource_version = Some("99".to_owned());
    }
    let a = stored_slice(&svc(), "web-a", &ports(), vec![stale_rv]);
    let p = place(&svc(), IpFamily::V4, &ports(), &[&a], desired(0..1), 100, &|_| false);
    assert_eq!(p.unchanged.len(), 1);
}

#[test]
fn a_duplicate_endpoint_in_a_slice_is_dropped() {
    let a = stored_slice(&svc(), "web-a", &ports(), vec![ep(0), ep(0), ep(1)]);
    let p = place(&svc(), IpFamily::V4, &ports(), &[&a], desired(0..2), 100, &|_| false);
    assert_eq!(sizes(&p.to_update), [2]);
    assert_eq!(p.removed, 1);
}

#[test]
fn stale_service_labels_alone_update_the_slice_with_new_labels() {
    let a = existing("web-a", 0..2);
    let relabelled = service("ns", "web")
        .port("http", 80, 8080)
        .labels([("team", "x")])
        .build();
    let p = place(&relabelled, IpFamily::V4, &ports(), &[&a], desired(0..2), 100, &|_| {
        false
    });
    assert_eq!(sizes(&p.to_update), [2]);
    assert_eq!(
        p.to_update[0]
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("team"))
            .map(String::as_str),
        Some("x")
    );
}

#[test]
fn a_slice_filled_from_the_remainder_keeps_its_labels() {
    // Upstream copies the unchanged slice as it is on this path, so a stale
    // reserved label survives the update.
    let mut a = existing("web-a", 0..2);
    a.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(LABEL_HEADLESS.to_owned(), String::new());
    let p = place(&svc(), IpFamily::V4, &ports(), &[&a], desired(0..3), 100, &|_| false);
    assert_eq!(sizes(&p.to_update), [3]);
    assert_eq!(p.to_update[0].metadata.labels, a.metadata.labels);
}

#[test]
fn new_slices_are_filled_in_endpoint_identity_order() {
    let p = place(&svc(), IpFamily::V4, &ports(), &[], desired([3, 0, 2, 1]), 2, &|_| {
        false
    });
    let first: Vec<_> = p
        .to_create
        .iter()
        .map(|s| endpoints(s)[0].addresses[0].clone())
        .collect();
    assert_eq!(first, ["10.0.0.0", "10.0.0.2"]);
    assert_eq!(p.to_create[0].metadata.generate_name.as_deref(), Some("web-"));
    assert_eq!(p.to_create[0].ports, Some(ports()));
}

#[test]
fn slice_to_fill_picks_the_closest_to_full_that_fits() {
    let slices: Vec<EndpointSlice> = [7, 9, 3, 8]
        .iter()
        .enumerate()
        .map(|(n, len)| existing(&format!("s{n}"), 0..*len))
        .collect();
    let refs: Vec<&EndpointSlice> = slices.iter().collect();
    assert_eq!(slice_to_fill(&refs, 2, 10), Some(3), "8 + 2 fills it exactly");
    assert_eq!(slice_to_fill(&refs, 1, 10), Some(1), "9 + 1 fills it exactly");
    assert_eq!(slice_to_fill(&refs, 3, 10), Some(0), "7 + 3");
    assert_eq!(slice_to_fill(&refs, 8, 10), None, "none has room for 8");
    assert_eq!(slice_to_fill(&[], 1, 10), None);
}
