//! Which objects are mirrored and what a mirrored slice looks like
//! (upstream's `shouldMirror`, `skipMirror`, `hasLeaderElection`,
//! `newEndpointSlice`, `getEndpointSlicePrefix`, `endpointsControllerKey`,
//! `managedByController`, `managedByChanged`, and the label, annotation and
//! owner comparisons of `reconcileByPortMapping`).

use std::collections::BTreeMap;

use ecm_types::endpoint_slice::set_endpoints;
use ecm_types::equality::map_eq;
use ecm_types::service;
use ecm_types::wellknown::{
    ANNOTATION_LAST_APPLIED_CONFIG, ANNOTATION_LAST_CHANGE_TRIGGER_TIME, ANNOTATION_LEADER, LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME, LABEL_SKIP_MIRROR, MANAGED_BY_MIRRORING_CONTROLLER,
};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// Longest valid DNS subdomain, the limit on `generateName` prefixes.
const DNS_SUBDOMAIN_MAX_LENGTH: usize = 253;

/// Whether `endpoints` may be mirrored at all: it is not labelled
/// `endpointslice.kubernetes.io/skip-mirror: "true"` (exactly that value) and
/// carries no leader-election annotation (any value, even empty). Says
/// nothing about its Service, which the sync checks.
pub(crate) fn should_mirror(endpoints: &Endpoints) -> bool {
    let meta = &endpoints.metadata;
    let skip = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_SKIP_MIRROR))
        .is_some_and(|v| v == "true");
    let leader = meta
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(ANNOTATION_LEADER));
    !skip && !leader
}

/// Whether `svc` has a selector. An empty selector counts as none: the API
/// server drops empty maps, so upstream sees `nil` for `selector: {}`.
pub(crate) fn has_selector(svc: &Service) -> bool {
    service::selector(svc).is_some_and(|s| !s.is_empty())
}

/// The `generateName` of a new slice: `<name>-`, or the bare name if the
/// dashed prefix would be too long for a valid name (upstream's
/// `getEndpointSlicePrefix`).
pub(crate) fn generate_name(endpoints_name: &str) -> String {
    let prefix = format!("{endpoints_name}-");
    if prefix.len() > DNS_SUBDOMAIN_MAX_LENGTH {
        endpoints_name.to_owned()
    } else {
        prefix
    }
}

/// Whether `key` is one of the annotations never copied onto a slice.
pub(crate) fn is_uncopied_annotation(key: &str) -> bool {
    matches!(
        key,
        ANNOTATION_LAST_CHANGE_TRIGGER_TIME | ANNOTATION_LAST_APPLIED_CONFIG
    )
}

/// The labels of a slice mirrored from `endpoints`: all of the Endpoints'
/// labels, with `kubernetes.io/service-name` and
/// `endpointslice.kubernetes.io/managed-by` overwritten.
pub(crate) fn slice_labels(endpoints: &Endpoints) -> BTreeMap<String, String> {
    let mut labels = endpoints.metadata.labels.clone().unwrap_or_default();
    labels.insert(
        LABEL_SERVICE_NAME.to_owned(),
        endpoints.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(LABEL_MANAGED_BY.to_owned(), MANAGED_BY_MIRRORING_CONTROLLER.to_owned());
    labels
}

/// The annotations of a slice mirrored from `endpoints`: all of the
/// Endpoints' annotations but the trigger time and kubectl's
/// last-applied-configuration.
pub(crate) fn slice_annotations(endpoints: &Endpoints) -> BTreeMap<String, String> {
    endpoints
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| !is_uncopied_annotation(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The owner reference of every mirrored slice: the Endpoints, as
/// controller, blocking its deletion.
pub(crate) fn controller_reference(endpoints: &Endpoints) -> OwnerReference {
    OwnerReference {
        api_version: "v1".to_owned(),
        kind: "Endpoints".to_owned(),
        name: endpoints.metadata.name.clone().unwrap_or_default(),
        uid: endpoints.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A slice mirrored from `endpoints` (upstream's `newEndpointSlice`), built
/// from scratch: `generateName` when `name` is `None` (a create), else that
/// name (an update, sent without resourceVersion); labels, annotations and
/// owner reference as [`slice_labels`], [`slice_annotations`] and
/// [`controller_reference`] say.
pub(crate) fn new_slice(
    endpoints: &Endpoints,
    address_type: &str,
    ports: &[EndpointPort],
    name: Option<&str>,
    items: Vec<Endpoint>,
) -> EndpointSlice {
    let endpoints_name = endpoints.metadata.name.as_deref().unwrap_or_default();
    let mut slice = EndpointSlice {
        metadata: ObjectMeta {
            name: name.map(str::to_owned),
            generate_name: name.is_none().then(|| generate_name(endpoints_name)),
            namespace: endpoints.metadata.namespace.clone(),
            labels: Some(slice_labels(endpoints)),
            annotations: Some(slice_annotations(endpoints)),
            owner_references: Some(vec![controller_reference(endpoints)]),
            ..ObjectMeta::default()
        },
        address_type: address_type.to_owned(),
        ports: Some(ports.to_vec()),
        ..EndpointSlice::default()
    };
    set_endpoints(&mut slice, items);
    slice
}

/// Whether the slice's labels, minus the two the controller sets itself,
/// equal the Endpoints' labels (absent equals empty). A reserved label on
/// the Endpoints therefore never matches, and its slices are rewritten on
/// every sync, as upstream.
pub(crate) fn labels_match(endpoints: &Endpoints, slice: &EndpointSlice) -> bool {
    let compared: BTreeMap<String, String> = slice
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| !matches!(k.as_str(), LABEL_SERVICE_NAME | LABEL_MANAGED_BY))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    map_eq(endpoints.metadata.labels.as_ref(), Some(&compared))
}

/// Whether the slice's annotations equal the Endpoints' annotations minus
/// the two never-copied keys (absent equals empty).
pub(crate) fn annotations_match(endpoints: &Endpoints, slice: &EndpointSlice) -> bool {
    map_eq(Some(&slice_annotations(endpoints)), slice.metadata.annotations.as_ref())
}

/// Whether `slice` is owned by an earlier Endpoints object of the same name:
/// it has an owner reference of kind `Endpoints` with the Endpoints' name
/// and another uid. A slice without such a reference is not rebuilt for it
/// (upstream's `needRebuildExistingSlices`).
pub(crate) fn owned_by_previous_incarnation(endpoints: &Endpoints, slice: &EndpointSlice) -> bool {
    let name = endpoints.metadata.name.as_deref().unwrap_or_default();
    let uid = endpoints.metadata.uid.as_deref().unwrap_or_default();
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "Endpoints" && o.name == name && o.uid != uid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{endpoints, mirrored_slice, service, service_with_selector, slice_port};
    use ecm_types::endpoint_slice::endpoints as slice_endpoints;

    fn labelled(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Endpoints {
        let mut ep = endpoints("foo", vec![]);
        let map = |pairs: &[(&str, &str)]| {
            (!pairs.is_empty()).then(|| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
        };
        ep.metadata.labels = map(labels);
        ep.metadata.annotations = map(annotations);
        ep
    }

    #[test]
    fn only_skip_mirror_true_and_the_leader_annotation_opt_out() {
        let cases: [(&str, Endpoints, bool); 8] = [
            ("plain", labelled(&[], &[]), true),
            ("skip-mirror true", labelled(&[(LABEL_SKIP_MIRROR, "true")], &[]), false),
            (
                "skip-mirror false",
                labelled(&[(LABEL_SKIP_MIRROR, "false")], &[]),
                true,
            ),
            ("skip-mirror True", labelled(&[(LABEL_SKIP_MIRROR, "True")], &[]), true),
            ("skip-mirror 1", labelled(&[(LABEL_SKIP_MIRROR, "1")], &[]), true),
            ("leader annotation", labelled(&[], &[(ANNOTATION_LEADER, "{}")]), false),
            (
                "empty leader annotation",
                labelled(&[], &[(ANNOTATION_LEADER, "")]),
                false,
            ),
            ("other annotation", labelled(&[], &[("foo", "bar")]), true),
        ];
        for (name, ep, want) in cases {
            assert_eq!(should_mirror(&ep), want, "{name}");
        }
    }

    #[test]
    fn an_empty_selector_is_no_selector() {
        assert!(!has_selector(&service("foo")));
        assert!(!has_selector(&service_with_selector("foo", &[])));
        assert!(has_selector(&service_with_selector("foo", &[("app", "foo")])));
        let mut no_spec = service("foo");
        no_spec.spec = None;
        assert!(!has_selector(&no_spec));
    }

    #[test]
    fn new_slices_copy_labels_and_annotations_and_are_owned_by_the_endpoints() {
        let ep = labelled(
            &[
                ("app", "demo"),
                (LABEL_SERVICE_NAME, "not-foo"),
                (LABEL_MANAGED_BY, "someone-else"),
                (LABEL_SKIP_MIRROR, "false"),
            ],
            &[
                ("foo", "bar"),
                (ANNOTATION_LAST_APPLIED_CONFIG, "{}"),
                (ANNOTATION_LAST_CHANGE_TRIGGER_TIME, ""),
            ],
        );
        let slice = new_slice(&ep, "IPv4", &[slice_port("http", 80, "TCP")], None, vec![]);
        assert_eq!(slice.metadata.generate_name.as_deref(), Some("foo-"));
        assert_eq!(slice.metadata.name, None);
        assert_eq!(slice.metadata.namespace.as_deref(), Some("ns"));
        let labels = slice.metadata.labels.clone().unwrap();
        assert_eq!(labels.get(LABEL_SERVICE_NAME).map(String::as_str), Some("foo"));
        assert_eq!(
            labels.get(LABEL_MANAGED_BY).map(String::as_str),
            Some(MANAGED_BY_MIRRORING_CONTROLLER)
        );
        assert_eq!(labels.get("app").map(String::as_str), Some("demo"));
        assert_eq!(labels.get(LABEL_SKIP_MIRROR).map(String::as_str), Some("false"));
        let annotations = slice.metadata.annotations.clone().unwrap();
        assert_eq!(annotations, BTreeMap::from([("foo".to_owned(), "bar".to_owned())]));
        let owners = slice.metadata.owner_references.clone().unwrap();
        assert_eq!(owners, [controller_reference(&ep)]);
        assert_eq!(owners[0].uid, "uid-foo");
        assert_eq!(owners[0].controller, Some(true));
        assert_eq!(owners[0].block_owner_deletion, Some(true));
        assert!(slice_endpoints(&slice).is_empty());

        let update = new_slice(&ep, "IPv6", &[], Some("foo-abc"), vec![]);
        assert_eq!(update.metadata.name.as_deref(), Some("foo-abc"));
        assert_eq!(update.metadata.generate_name, None);
        assert_eq!(update.metadata.resource_version, None);
        assert_eq!(update.address_type, "IPv6");
        assert_eq!(update.ports.as_deref(), Some(&[][..]));
    }

    #[test]
    fn annotations_are_always_a_map() {
        let slice = new_slice(&labelled(&[], &[]), "IPv4", &[], None, vec![]);
        assert_eq!(slice.metadata.annotations, Some(BTreeMap::new()));
    }

    #[test]
    fn too_long_names_get_no_dash() {
        assert_eq!(generate_name("web"), "web-");
        let long = "a".repeat(253);
        assert_eq!(generate_name(&long), long);
    }

    #[test]
    fn label_comparison_ignores_the_reserved_keys_on_the_slice_side_only() {
        let ep = labelled(&[("team", "a")], &[]);
        let slice = mirrored_slice(&ep, "foo-1", "IPv4", vec![], vec![]);
        assert!(labels_match(&ep, &slice));
        let other = labelled(&[("team", "b")], &[]);
        assert!(!labels_match(&other, &slice));
        let reserved = labelled(&[("team", "a"), (LABEL_MANAGED_BY, "x")], &[]);
        let slice = mirrored_slice(&reserved, "foo-1", "IPv4", vec![], vec![]);
        assert!(!labels_match(&reserved, &slice), "never matches");
        let none = labelled(&[], &[]);
        assert!(labels_match(
            &none,
            &mirrored_slice(&none, "foo-1", "IPv4", vec![], vec![])
        ));
    }

    #[test]
    fn annotation_comparison_drops_the_uncopied_keys_from_the_endpoints_only() {
        let ep = labelled(&[], &[("foo", "bar"), (ANNOTATION_LAST_APPLIED_CONFIG, "{}")]);
        let mut slice = mirrored_slice(&ep, "foo-1", "IPv4", vec![], vec![]);
        slice.metadata.annotations = Some(BTreeMap::from([("foo".to_owned(), "bar".to_owned())]));
        assert!(annotations_match(&ep, &slice));
        slice
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(ANNOTATION_LAST_APPLIED_CONFIG.to_owned(), "{}".to_owned());
        assert!(!annotations_match(&ep, &slice), "last-applied on the slice must go");
        slice.metadata.annotations = None;
        assert!(!annotations_match(&ep, &slice));
        assert!(annotations_match(&labelled(&[], &[]), &slice), "absent equals empty");
    }

    #[test]
    fn only_a_stale_owner_uid_forces_a_rebuild() {
        let ep = endpoints("foo", vec![]);
        let mut slice = mirrored_slice(&ep, "foo-1", "IPv4", vec![], vec![]);
        assert!(!owned_by_previous_incarnation(&ep, &slice));
        slice.metadata.owner_references.as_mut().unwrap()[0].uid = "old".to_owned();
        assert!(owned_by_previous_incarnation(&ep, &slice));
        slice.metadata.owner_references.as_mut().unwrap()[0].name = "bar".to_owned();
        assert!(!owned_by_previous_incarnation(&ep, &slice), "another object");
        slice.metadata.owner_references = None;
        assert!(!owned_by_previous_incarnation(&ep, &slice), "missing owner");
    }
}
