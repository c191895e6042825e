//! Upstream's `TestReconcile` and `TestRecycleSlices` cases, in our data:
//! what is created, updated, deleted or left alone.

use std::collections::BTreeMap;

use super::*;
use crate::test_support::{addr, addr_on, endpoints, mirrored_slice, port, slice_endpoint, slice_port, subset};
use ecm_types::wellknown::{ANNOTATION_LAST_APPLIED_CONFIG, LABEL_MANAGED_BY};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

fn http() -> Vec<k8s_openapi::api::core::v1::EndpointPort> {
    vec![port("http", 80, "TCP")]
}

fn slice_http() -> Vec<k8s_openapi::api::discovery::v1::EndpointPort> {
    vec![slice_port("http", 80, "TCP")]
}

/// (creates, updates, deletes)
fn counts(plan: &Plan<'_>) -> (usize, usize, usize) {
    (plan.to_create.len(), plan.to_update.len(), plan.to_delete.len())
}

fn ips(slice: &EndpointSlice) -> Vec<String> {
    let mut ips: Vec<String> = slice_endpoints(slice).iter().map(|e| e.addresses[0].clone()).collect();
    ips.sort();
    ips
}

/// A mirrored slice holding exactly what `foo` with one ready 10.0.0.1 on
/// http wants.
fn matching(ep: &Endpoints) -> EndpointSlice {
    let mut e = slice_endpoint("10.0.0.1", true);
    e.hostname = Some("pod-1".to_owned());
    e.node_name = Some("node-1".to_owned());
    mirrored_slice(ep, "foo-abc", "IPv4", slice_http(), vec![e])
}

fn one_address() -> Endpoints {
    endpoints(
        "foo",
        vec![subset(vec![addr_on("10.0.0.1", "pod-1", "node-1")], vec![], http())],
    )
}

#[test]
fn no_subsets_write_nothing() {
    let p = plan(&endpoints("foo", vec![]), [], 1000);
    assert!(p.is_noop());
    assert_eq!(p.totals, Totals::default());
}

#[test]
fn one_address_creates_one_slice() {
    let ep = one_address();
    let p = plan(&ep, [], 1000);
    assert_eq!(counts(&p), (1, 0, 0));
    let created = &p.to_create[0];
    assert_eq!(created.metadata.generate_name.as_deref(), Some("foo-"));
    assert_eq!(created.address_type, "IPv4");
    assert_eq!(created.ports.as_deref(), Some(slice_http().as_slice()));
    assert_eq!(ips(created), ["10.0.0.1"]);
    assert_eq!(p.totals.added, 1);
}

#[test]
fn a_matching_slice_is_left_alone() {
    let ep = one_address();
    let existing = matching(&ep);
    let p = plan(&ep, [&existing], 1000);
    assert!(p.is_noop());
    assert_eq!(p.unchanged.len(), 1);
}

#[test]
fn an_owner_reference_to_a_previous_endpoints_forces_an_update() {
    let ep = one_address();
    let mut existing = matching(&ep);
    existing.metadata.owner_references.as_mut().unwrap()[0].uid = "previous-uid".to_owned();
    let p = plan(&ep, [&existing], 1000);
    assert_eq!(counts(&p), (0, 1, 0));
    let updated = &p.to_update[0];
    assert_eq!(updated.metadata.name.as_deref(), Some("foo-abc"));
    assert_eq!(updated.metadata.owner_references.as_ref().unwrap()[0].uid, "uid-foo");
}

#[test]
fn a_missing_owner_reference_does_not_force_an_update() {
    let ep = one_address();
    let mut existing = matching(&ep);
    existing.metadata.owner_references = None;
    assert!(plan(&ep, [&existing], 1000).is_noop());
}

#[test]
fn annotation_and_label_drift_force_an_update() {
    let ep = one_address();
    let mut extra = matching(&ep);
    extra.metadata.annotations = Some(BTreeMap::from([("foo".to_owned(), "bar".to_owned())]));
    let mut last_applied = matching(&ep);
    last_applied.metadata.annotations = Some(BTreeMap::from([(
        ANNOTATION_LAST_APPLIED_CONFIG.to_owned(),
        "{}".to_owned(),
    )]));
    let mut label = matching(&ep);
    label
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("stray".to_owned(), "x".to_owned());
    for (name, existing) in [("annotation", extra), ("last-applied", last_applied), ("label", label)] {
        let p = plan(&ep, [&existing], 1000);
        assert_eq!(counts(&p), (0, 1, 0), "{name}");
        assert_eq!(p.to_update[0].metadata.annotations, Some(BTreeMap::new()), "{name}");
    }
}

#[test]
fn annotations_other_than_last_applied_are_mirrored() {
    let mut ep = one_address();
    ep.metadata.annotations = Some(BTreeMap::from([
        ("foo".to_owned(), "bar".to_owned()),
        (ANNOTATION_LAST_APPLIED_CONFIG.to_owned(), "{}".to_owned()),
    ]));
    let p = plan(&ep, [], 1000);
    assert_eq!(
        p.to_create[0].metadata.annotations,
        Some(BTreeMap::from([("foo".to_owned(), "bar".to_owned())]))
    );
}

#[test]
fn reserved_labels_on_the_endpoints_rewrite_the_slice_every_time() {
    let mut ep = one_address();
    ep.metadata.labels = Some(BTreeMap::from([(LABEL_MANAGED_BY.to_owned(), "someone".to_owned())]));
    let existing = matching(&ep);
    assert_eq!(counts(&plan(&ep, [&existing], 1000)), (0, 1, 0));
}

#[test]
fn two_subsets_with_different_ports_and_addresses_make_two_slices() {
    let ep = endpoints(
        "foo",
        vec![
            subset(vec![addr("10.0.0.1")], vec![], http()),
            subset(vec![addr("10.0.0.2")], vec![], vec![port("https", 443, "TCP")]),
        ],
    );
    let p = plan(&ep, [], 1000);
    assert_eq!(counts(&p), (2, 0, 0));
}

#[test]
fn repacking_merges_subsets_before_mirroring() {
    let same_address = endpoints(
        "foo",
        vec![
            subset(vec![addr("10.0.0.1")], vec![], http()),
            subset(vec![addr("10.0.0.1")], vec![], vec![port("https", 443, "TCP")]),
        ],
    );
    let p = plan(&same_address, [], 1000);
    assert_eq!(counts(&p), (1, 0, 0), "different port, same address");
    assert_eq!(p.to_create[0].ports.as_ref().unwrap().len(), 2);

    let same_port = endpoints(
        "foo",
        vec![
            subset(vec![addr("10.0.0.1")], vec![], http()),
            subset(vec![addr("10.0.0.2")], vec![], http()),
        ],
    );
    let p = plan(&same_port, [], 1000);
    assert_eq!(counts(&p), (1, 0, 0), "different address, same port");
    assert_eq!(ips(&p.to_create[0]), ["10.0.0.1", "10.0.0.2"]);
}

#[test]
fn dual_stack_makes_one_slice_per_family_with_addresses() {
    let ep = endpoints(
        "foo",
        vec![
            subset(vec![addr("2001:db8::1"), addr("10.0.0.2")], vec![], http()),
            subset(
                vec![addr("10.0.1.1"), addr("2001:db8::2")],
                vec![],
                vec![port("x", 3000, "TCP")],
            ),
        ],
    );
    let p = plan(&ep, [], 1000);
    assert_eq!(counts(&p), (4, 0, 0));
    let families: Vec<&str> = p.to_create.iter().map(|s| s.address_type.as_str()).collect();
    assert_eq!(families.iter().filter(|f| **f == "IPv6").count(), 2);

    let v6_only = endpoints("foo", vec![subset(vec![addr("2001:DB8:0:0:0:0:0:1")], vec![], http())]);
    let p = plan(&v6_only, [], 1000);
    assert_eq!(counts(&p), (1, 0, 0));
    assert_eq!(p.to_create[0].address_type, "IPv6");
    assert_eq!(ips(&p.to_create[0]), ["2001:db8::1"]);
}

#[test]
fn a_subset_over_the_cap_is_truncated() {
    let ep = endpoints(
        "foo",
        vec![
            subset(vec![addr("10.0.0.1"), addr("10.0.0.2")], vec![], http()),
            subset(
                vec![addr("10.0.1.1"), addr("10.0.1.2"), addr("10.0.1.3")],
                vec![],
                vec![port("x", 3000, "TCP")],
            ),
        ],
    );
    let p = plan(&ep, [], 2);
    assert_eq!(counts(&p), (2, 0, 0));
    let mut sizes: Vec<usize> = p.to_create.iter().map(|s| slice_endpoints(s).len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [2, 2]);
    assert_eq!(p.addresses_skipped, 1);
}

#[test]
fn a_thousand_addresses_fit_one_slice() {
    let many: Vec<_> = (0..1001)
        .map(|i| addr(&format!("10.0.{}.{}", i / 250, i % 250)))
        .collect();
    let p = plan(
        &endpoints("foo", vec![subset(many[..1000].to_vec(), vec![], http())]),
        [],
        1000,
    );
    assert_eq!(counts(&p), (1, 0, 0));
    assert_eq!(p.addresses_skipped, 0);
    let p = plan(&endpoints("foo", vec![subset(many, vec![], http())]), [], 1000);
    assert_eq!(counts(&p), (1, 0, 0));
    assert_eq!(slice_endpoints(&p.to_create[0]).len(), 1000);
    assert_eq!(p.addresses_skipped, 1);
}

#[test]
fn an_empty_existing_slice_is_reused_and_a_new_group_created() {
    let ep = endpoints(
        "foo",
        vec![
            subset(vec![addr("10.0.0.1"), addr("10.0.0.2")], vec![], http()),
            subset(vec![addr("10.0.1.1")], vec![], vec![port("x", 3000, "TCP")]),
        ],
    );
    let empty = mirrored_slice(&ep, "foo-empty", "IPv4", slice_http(), vec![]);
    let p = plan(&ep, [&empty], 1000);
    assert_eq!(counts(&p), (1, 1, 0));
    assert_eq!(p.to_update[0].metadata.name.as_deref(), Some("foo-empty"));
    assert_eq!(ips(&p.to_update[0]), ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(p.totals.added, 3);
}

#[test]
fn a_partly_right_slice_counts_added_updated_and_removed() {
    let ep = endpoints(
        "foo",
        vec![subset(
            vec![
                addr_on("10.0.0.1", "pod-1", "node-1"),
                addr_on("10.0.0.2", "pod-2", "node-2"),
            ],
            vec![],
            http(),
        )],
    );
    let mut same_identity = slice_endpoint("10.0.0.2", true);
    same_identity.hostname = Some("pod-2".to_owned());
    let mut other_identity = slice_endpoint("10.0.0.1", true);
    other_identity.addresses.push("10.0.0.3".to_owned());
    other_identity.hostname = Some("pod-1".to_owned());
    let existing = mirrored_slice(
        &ep,
        "foo-partial",
        "IPv4",
        slice_http(),
        vec![same_identity, other_identity],
    );
    let p = plan(&ep, [&existing], 1000);
    assert_eq!(counts(&p), (0, 1, 0));
    assert_eq!(
        p.totals,
        Totals {
            added: 1,
            updated: 1,
            removed: 1
        }
    );
}

#[test]
fn surplus_slices_of_a_group_are_deleted() {
    let ep = one_address();
    let first = matching(&ep);
    let mut second = matching(&ep);
    second.metadata.name = Some("foo-zzz".to_owned());
    let p = plan(&ep, [&second, &first], 1000);
    assert_eq!(counts(&p), (0, 0, 1));
    assert_eq!(p.to_delete[0].metadata.name.as_deref(), Some("foo-zzz"));
    assert_eq!(p.unchanged[0].metadata.name.as_deref(), Some("foo-abc"));
}

#[test]
fn slices_of_groups_no_longer_desired_are_deleted() {
    let ep = endpoints("foo", vec![]);
    let leftover = matching(&one_address());
    let mut fqdn = matching(&one_address());
    fqdn.metadata.name = Some("foo-fqdn".to_owned());
    fqdn.address_type = "FQDN".to_owned();
    let p = plan(&ep, [&leftover, &fqdn], 1000);
    assert_eq!(counts(&p), (0, 0, 2));
}

#[test]
fn a_family_without_addresses_loses_its_slice() {
    let ep = one_address();
    let mut v6 = mirrored_slice(
        &ep,
        "foo-v6",
        "IPv6",
        slice_http(),
        vec![slice_endpoint("fd00::1", true)],
    );
    v6.metadata.name = Some("foo-v6".to_owned());
    let v4 = matching(&ep);
    let p = plan(&ep, [&v4, &v6], 1000);
    assert_eq!(counts(&p), (0, 0, 1));
    assert_eq!(p.totals.removed, 1);
}

#[test]
fn a_port_change_recycles_the_old_slice() {
    let ep = endpoints(
        "foo",
        vec![subset(vec![addr("10.0.0.1")], vec![], vec![port("http", 8080, "TCP")])],
    );
    let old = mirrored_slice(
        &ep,
        "foo-r4c9s",
        "IPv4",
        slice_http(),
        vec![slice_endpoint("10.0.0.1", true)],
    );
    let p = plan(&ep, [&old], 1000);
    assert_eq!(counts(&p), (0, 1, 0));
    let updated = &p.to_update[0];
    assert_eq!(updated.metadata.name.as_deref(), Some("foo-r4c9s"));
    assert_eq!(updated.metadata.generate_name, None);
    assert_eq!(updated.ports.as_ref().unwrap()[0].port, Some(8080));
}

#[test]
fn recycling_never_mixes_families() {
    let ep = endpoints(
        "foo",
        vec![subset(vec![addr("10.0.0.1")], vec![], vec![port("http", 8080, "TCP")])],
    );
    let old_v6 = mirrored_slice(
        &ep,
        "foo-v6",
        "IPv6",
        slice_http(),
        vec![slice_endpoint("fd00::1", true)],
    );
    let p = plan(&ep, [&old_v6], 1000);
    assert_eq!(counts(&p), (1, 0, 1));
}

#[test]
fn recycling_pairs_creates_and_deletes_per_family() {
    // Both families move from port 80 to 8080: two creates, two deletes.
    let ep = endpoints(
        "foo",
        vec![subset(
            vec![addr("10.0.0.1"), addr("fd00::1")],
            vec![],
            vec![port("http", 8080, "TCP")],
        )],
    );
    let old_v4 = mirrored_slice(
        &ep,
        "foo-v4",
        "IPv4",
        slice_http(),
        vec![slice_endpoint("10.0.0.1", true)],
    );
    let old_v6 = mirrored_slice(
        &ep,
        "foo-v6",
        "IPv6",
        slice_http(),
        vec![slice_endpoint("fd00::1", true)],
    );
    let p = plan(&ep, [&old_v4, &old_v6], 1000);
    assert_eq!(counts(&p), (0, 2, 0));
    for slice in &p.to_update {
        let want = if slice.address_type == "IPv4" {
            "foo-v4"
        } else {
            "foo-v6"
        };
        assert_eq!(slice.metadata.name.as_deref(), Some(want));
    }
}

#[test]
fn endpoints_being_deleted_get_no_new_slices_but_updates_and_deletes() {
    let mut ep = endpoints(
        "foo",
        vec![
            subset(vec![addr("10.0.0.1")], vec![], http()),
            subset(vec![addr("10.0.1.1")], vec![], vec![port("x", 3000, "TCP")]),
        ],
    );
    ep.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
    assert!(plan(&ep, [], 1000).is_noop());
    let stale = mirrored_slice(&ep, "foo-abc", "IPv4", slice_http(), vec![]);
    let p = plan(&ep, [&stale], 1000);
    assert_eq!(counts(&p), (0, 1, 0), "the update happens, the create does not");
}

#[test]
fn efficiency_counts_slices_before_recycling() {
    let ep = endpoints(
        "foo",
        vec![subset(vec![addr("10.0.0.1")], vec![], vec![port("http", 8080, "TCP")])],
    );
    let old = mirrored_slice(&ep, "foo-old", "IPv4", slice_http(), vec![]);
    let p = plan(&ep, [&old], 1000);
    let total: usize = p.efficiency.iter().map(|e| e.slices).sum();
    let endpoints: usize = p.efficiency.iter().map(|e| e.endpoints).sum();
    assert_eq!((total, endpoints), (1, 1));
}

#[test]
fn duplicate_identities_in_a_slice_count_as_a_change() {
    let ep = endpoints("foo", vec![subset(vec![addr("10.0.0.1")], vec![], http())]);
    let e = slice_endpoint("10.0.0.1", true);
    let existing = mirrored_slice(&ep, "foo-dup", "IPv4", slice_http(), vec![e.clone(), e]);
    assert_eq!(counts(&plan(&ep, [&existing], 1000)), (0, 1, 0));
}
