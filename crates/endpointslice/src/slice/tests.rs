//! Upstream's `TestNewEndpointSlice`, `TestSetEndpointSliceLabels`,
//! `TestPlaceHolderSliceCompare` and `TestServiceControllerKey`, in our own
//! data.

use super::*;
use crate::test_support::{endpoint, tcp_port};
use ecm_types::fixtures::{at, service};
use ecm_types::wellknown::ANNOTATION_LAST_CHANGE_TRIGGER_TIME;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

const CONTROLLER: &str = MANAGED_BY_ENDPOINTSLICE_CONTROLLER;

#[test]
fn new_slice_shape() {
    let svc = service("test", "foo").labels([("foo", "bar")]).build();
    let slice = new_slice(&svc, IpFamily::V4, &[tcp_port("foo", 80)]);
    assert_eq!(slice.metadata.generate_name.as_deref(), Some("foo-"));
    assert_eq!(slice.metadata.name, None);
    assert_eq!(slice.metadata.namespace.as_deref(), Some("test"));
    assert_eq!(
        slice.metadata.labels,
        Some(labels(&[
            (LABEL_SERVICE_NAME, "foo"),
            (LABEL_MANAGED_BY, CONTROLLER),
            ("foo", "bar")
        ]))
    );
    assert_eq!(
        slice.metadata.owner_references,
        Some(vec![OwnerReference {
            api_version: "v1".to_owned(),
            kind: "Service".to_owned(),
            name: "foo".to_owned(),
            uid: "uid-foo".to_owned(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }])
    );
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(slice.ports, Some(vec![tcp_port("foo", 80)]));
    assert_eq!(slice.endpoints, Some(Vec::new()));
    assert_eq!(slice.metadata.annotations, None, "service annotations are not copied");
}

#[test]
fn new_slice_of_headless_service_and_reserved_service_labels() {
    let headless = service("test", "foo").headless().labels([("foo", "bar")]).build();
    assert_eq!(
        new_slice(&headless, IpFamily::V6, &[]).metadata.labels,
        Some(labels(&[
            (LABEL_SERVICE_NAME, "foo"),
            (LABEL_MANAGED_BY, CONTROLLER),
            (LABEL_HEADLESS, ""),
            ("foo", "bar")
        ]))
    );
    let evil = service("test", "foo")
        .labels([(LABEL_SERVICE_NAME, "bad"), (LABEL_MANAGED_BY, "actor"), ("foo", "bar")])
        .build();
    assert_eq!(
        new_slice(&evil, IpFamily::V4, &[]).metadata.labels,
        Some(labels(&[
            (LABEL_SERVICE_NAME, "foo"),
            (LABEL_MANAGED_BY, CONTROLLER),
            ("foo", "bar")
        ]))
    );
}

#[test]
fn slice_labels_table() {
    let base = || service("test", "foo");
    let managed = [(LABEL_SERVICE_NAME, "foo"), (LABEL_MANAGED_BY, CONTROLLER)];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut all = managed.to_vec();
        all.extend_from_slice(extra);
        labels(&all)
    };
    let cases: Vec<(
        &str,
        Option<BTreeMap<String, String>>,
        Service,
        BTreeMap<String, String>,
        bool,
    )> = vec![
        ("no labels anywhere", None, base().build(), with(&[]), false),
        (
            "headless service with labels, empty slice",
            None,
            base().headless().labels([("foo", "bar")]).build(),
            with(&[(LABEL_HEADLESS, ""), ("foo", "bar")]),
            true,
        ),
        (
            "headless service without labels, empty slice",
            None,
            base().headless().build(),
            with(&[(LABEL_HEADLESS, "")]),
            false,
        ),
        (
            "service carrying the headless label, empty slice",
            None,
            base().labels([(LABEL_HEADLESS, "")]).build(),
            with(&[]),
            false,
        ),
        (
            "headless service became ClusterIP: stale headless label alone is no change",
            Some(with(&[(LABEL_HEADLESS, "")])),
            base().build(),
            with(&[]),
            false,
        ),
        (
            "headless service and slice with the same labels",
            Some(with(&[("foo", "bar")])),
            base().headless().labels([("foo", "bar")]).build(),
            with(&[(LABEL_HEADLESS, ""), ("foo", "bar")]),
            false,
        ),
        (
            "service gained a label",
            Some(with(&[])),
            base().labels([("foo", "bar")]).build(),
            with(&[("foo", "bar")]),
            true,
        ),
        (
            "service lost a label",
            Some(with(&[("foo", "bar")])),
            base().build(),
            with(&[]),
            true,
        ),
        (
            "service label value changed",
            Some(with(&[("foo", "bar")])),
            base().labels([("foo", "baz")]).build(),
            with(&[("foo", "baz")]),
            true,
        ),
        (
            "service trying to hijack only reserved labels",
            Some(with(&[])),
            base()
                .labels([
                    (LABEL_SERVICE_NAME, "bad"),
                    (LABEL_MANAGED_BY, "actor"),
                    (LABEL_HEADLESS, "invalid"),
                ])
                .build(),
            with(&[]),
            false,
        ),
        (
            "service hijacking reserved labels and adding one",
            Some(with(&[])),
            base()
                .labels([(LABEL_SERVICE_NAME, "bad"), (LABEL_MANAGED_BY, "actor"), ("foo", "bar")])
                .build(),
            with(&[("foo", "bar")]),
            true,
        ),
        (
            "stale managed-by value alone is no change",
            Some(labels(&[(LABEL_SERVICE_NAME, "foo"), (LABEL_MANAGED_BY, "other")])),
            base().build(),
            with(&[]),
            false,
        ),
    ];
    for (name, current, svc, want, changed) in cases {
        let (got, got_changed) = slice_labels(current.as_ref(), &svc);
        assert_eq!(got, want, "{name}: labels");
        assert_eq!(got_changed, changed, "{name}: changed");
    }
}

#[test]
fn ownership_needs_v1_service_kind_and_uid() {
    let svc = service("test", "foo").build();
    let mut slice = new_slice(&svc, IpFamily::V4, &[]);
    assert!(owned_by(&slice, &svc));
    let mut not_controller = slice.clone();
    if let Some(refs) = not_controller.metadata.owner_references.as_mut() {
        refs[0].controller = None;
    }
    assert!(owned_by(&not_controller, &svc), "the controller flag is not looked at");
    for change in [
        |r: &mut OwnerReference| r.uid = "different".to_owned(),
        |r: &mut OwnerReference| r.kind = "Deployment".to_owned(),
        |r: &mut OwnerReference| r.api_version = "v2".to_owned(),
    ] {
        let mut other = slice.clone();
        if let Some(refs) = other.metadata.owner_references.as_mut() {
            change(&mut refs[0]);
        }
        assert!(!owned_by(&other, &svc));
    }
    slice.metadata.owner_references = None;
    assert!(!owned_by(&slice, &svc));
}

#[test]
fn placeholder_comparison_looks_at_namespace_labels_address_type_ports_and_endpoints() {
    let svc = service("test", "foo").build();
    let placeholder = new_slice(&svc, IpFamily::V4, &[]);
    let mut stored = placeholder.clone();
    stored.metadata.name = Some("foo-abcde".to_owned());
    stored.metadata.generate_name = None;
    stored.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(5)));
    stored.metadata.annotations = Some(labels(&[("a", "b")]));
    stored.metadata.owner_references = None;
    stored.ports = None;
    stored.endpoints = None;
    assert!(
        matches_placeholder(&stored, &placeholder),
        "name, time, annotations, owners and nil-vs-empty are ignored"
    );

    let mut other_labels = stored.clone();
    other_labels.metadata.labels = Some(labels(&[("bar", "true")]));
    let mut other_namespace = stored.clone();
    other_namespace.metadata.namespace = Some("elsewhere".to_owned());
    let mut other_type = stored.clone();
    other_type.address_type = "IPv6".to_owned();
    let mut with_ports = stored.clone();
    with_ports.ports = Some(vec![tcp_port("foo", 80)]);
    let mut with_endpoints = stored.clone();
    set_endpoints(&mut with_endpoints, vec![endpoint("p", "10.0.0.1")]);
    for (name, slice) in [
        ("labels", other_labels),
        ("namespace", other_namespace),
        ("address type", other_type),
        ("ports", with_ports),
        ("endpoints", with_endpoints),
    ] {
        assert!(!matches_placeholder(&slice, &placeholder), "{name}");
    }
}

#[test]
fn trigger_time_is_set_or_removed_and_other_annotations_kept() {
    let svc = service("test", "foo").build();
    let mut slice = new_slice(&svc, IpFamily::V4, &[]);
    set_trigger_time(&mut slice, Some(at(1)));
    assert_eq!(
        slice.metadata.annotations,
        Some(labels(&[(ANNOTATION_LAST_CHANGE_TRIGGER_TIME, "2024-01-15T10:00:01Z")]))
    );
    slice
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert("keep".to_owned(), "me".to_owned());
    set_trigger_time(&mut slice, None);
    assert_eq!(slice.metadata.annotations, Some(labels(&[("keep", "me")])));
    let mut bare = new_slice(&svc, IpFamily::V4, &[]);
    set_trigger_time(&mut bare, None);
    assert_eq!(bare.metadata.annotations, None);
}

#[test]
fn generate_name_is_the_service_name_and_a_dash() {
    assert_eq!(generate_name("web"), "web-");
    let long = "a".repeat(253);
    assert_eq!(generate_name(&long), long);
}
