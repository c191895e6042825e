//! The shape of the slices the controller writes: labels, owner reference,
//! name prefix, the placeholder comparison and the trigger-time annotation
//! (upstream's `newEndpointSlice`, `setEndpointSliceLabels`, `ownedBy`,
//! `placeholderSliceCompare`, `addTriggerTimeAnnotation`,
//! `ServiceControllerKey`, `ManagedByController`).

use std::collections::BTreeMap;

use ecm_informer::ObjectKey;
use ecm_types::endpoint_slice::{endpoints, ports, set_endpoints};
use ecm_types::equality::map_eq;
use ecm_types::pod::format_trigger_time;
use ecm_types::wellknown::{
    ANNOTATION_LAST_CHANGE_TRIGGER_TIME, LABEL_HEADLESS, LABEL_MANAGED_BY, LABEL_SERVICE_NAME,
    MANAGED_BY_ENDPOINTSLICE_CONTROLLER,
};
use ecm_types::{IpFamily, service};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;

/// Longest valid DNS subdomain, the limit on `generateName` prefixes.
const DNS_SUBDOMAIN_MAX_LENGTH: usize = 253;

/// Whether `key` is one of the labels this controller always sets itself
/// and never copies from the Service.
pub(crate) fn is_reserved_label(key: &str) -> bool {
    matches!(key, LABEL_SERVICE_NAME | LABEL_MANAGED_BY | LABEL_HEADLESS)
}

/// The labels a slice of `svc` should carry, and whether they differ from
/// `current` (upstream's `setEndpointSliceLabels`).
///
/// The labels are the Service's labels without the reserved keys, plus
/// `service.kubernetes.io/headless: ""` for a Service without cluster IP,
/// plus the service-name and managed-by labels. Only the non-reserved labels
/// are compared: a stale reserved label never causes an update by itself
/// (upstream quirk), it is corrected when the slice is written for another
/// reason.
pub(crate) fn slice_labels(
    current: Option<&BTreeMap<String, String>>,
    svc: &Service,
) -> (BTreeMap<String, String>, bool) {
    let current: BTreeMap<&String, &String> = current
        .into_iter()
        .flatten()
        .filter(|(k, _)| !is_reserved_label(k))
        .collect();
    let mut labels = BTreeMap::new();
    for (key, value) in svc.metadata.labels.iter().flatten() {
        if is_reserved_label(key) {
            tracing::debug!(
                service = %ObjectKey::of(svc),
                label = %key,
                "service uses a reserved EndpointSlice label, skipping it"
            );
            continue;
        }
        labels.insert(key.clone(), value.clone());
    }
    let changed = current.len() != labels.len() || current.iter().any(|(k, v)| labels.get(*k) != Some(*v));
    if !service::is_service_ip_set(svc) {
        labels.insert(LABEL_HEADLESS.to_owned(), String::new());
    }
    labels.insert(
        LABEL_SERVICE_NAME.to_owned(),
        svc.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(
        LABEL_MANAGED_BY.to_owned(),
        MANAGED_BY_ENDPOINTSLICE_CONTROLLER.to_owned(),
    );
    (labels, changed)
}

/// The owner reference of every slice this controller creates: the Service,
/// as controller, blocking its deletion.
pub(crate) fn controller_reference(svc: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".to_owned(),
        kind: "Service".to_owned(),
        name: svc.metadata.name.clone().unwrap_or_default(),
        uid: svc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether `slice` is owned by `svc`: it has an owner reference with
/// `apiVersion: v1`, `kind: Service` and the Service's uid (the `controller`
/// flag is not looked at).
pub(crate) fn owned_by(slice: &EndpointSlice, svc: &Service) -> bool {
    let uid = svc.metadata.uid.as_deref().unwrap_or_default();
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.kind == "Service" && o.api_version == "v1")
}

/// The `generateName` of a new slice: `<service>-`, or the bare Service name
/// if the prefix would not be a valid DNS subdomain (which a valid Service
/// name never makes it).
pub(crate) fn generate_name(service_name: &str) -> String {
    let prefix = format!("{service_name}-");
    if prefix.len() > DNS_SUBDOMAIN_MAX_LENGTH {
        service_name.to_owned()
    } else {
        prefix
    }
}

/// A new, empty slice of `svc` for `family` with `ports` (upstream's
/// `newEndpointSlice`): `generateName` `<service>-`, the Service's
/// namespace, the controller owner reference and the labels of
/// `slice_labels`.
pub fn new_slice(svc: &Service, family: IpFamily, ports: &[EndpointPort]) -> EndpointSlice {
    let (labels, _) = slice_labels(None, svc);
    let mut slice = EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(generate_name(svc.metadata.name.as_deref().unwrap_or_default())),
            namespace: svc.metadata.namespace.clone(),
            owner_references: Some(vec![controller_reference(svc)]),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        address_type: family.as_api().to_owned(),
        ports: Some(ports.to_vec()),
        ..EndpointSlice::default()
    };
    set_endpoints(&mut slice, Vec::new());
    slice
}

/// Whether an existing slice can stand in for `placeholder` (upstream's
/// `placeholderSliceCompare`): same namespace, same labels, same address
/// type, and neither ports nor endpoints (absent equals empty). Name,
/// annotations and owner references are not compared, so an empty slice
/// owned by an older incarnation of the Service is kept as the placeholder
/// (upstream quirk).
pub(crate) fn matches_placeholder(existing: &EndpointSlice, placeholder: &EndpointSlice) -> bool {
    existing.metadata.namespace.as_deref().unwrap_or_default()
        == placeholder.metadata.namespace.as_deref().unwrap_or_default()
        && map_eq(existing.metadata.labels.as_ref(), placeholder.metadata.labels.as_ref())
        && existing.address_type == placeholder.address_type
        && ports(existing) == ports(placeholder)
        && endpoints(existing) == endpoints(placeholder)
}

/// Sets the last-change trigger-time annotation of a slice about to be
/// written, or removes it when there is no trigger time (upstream's
/// `addTriggerTimeAnnotation`). Other annotations are kept.
pub(crate) fn set_trigger_time(slice: &mut EndpointSlice, trigger_time: Option<Timestamp>) {
    let annotations = slice.metadata.annotations.get_or_insert_with(BTreeMap::new);
    match trigger_time {
        Some(time) => {
            annotations.insert(
                ANNOTATION_LAST_CHANGE_TRIGGER_TIME.to_owned(),
                format_trigger_time(time),
            );
        }
        None => {
            annotations.remove(ANNOTATION_LAST_CHANGE_TRIGGER_TIME);
        }
    }
    if annotations.is_empty() {
        slice.metadata.annotations = None;
    }
}

#[cfg(test)]
mod tests;
