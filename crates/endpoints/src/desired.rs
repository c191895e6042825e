//! The Endpoints object a Service should have, computed from cached inputs
//! only. No I/O: every function here is pure and table-tested.

use std::collections::BTreeMap;

use ecm_types::equality::{endpoint_subsets_eq, map_eq};
use ecm_types::pod::format_trigger_time;
use ecm_types::ports::service_port_protocol;
use ecm_types::wellknown::{
    ANNOTATION_LAST_CHANGE_TRIGGER_TIME, ANNOTATION_OVER_CAPACITY, LABEL_ENDPOINTS_MANAGED_BY, LABEL_HEADLESS,
    MANAGED_BY_ENDPOINTS_CONTROLLER, OVER_CAPACITY_TRUNCATED,
};
use ecm_types::{PodProjection, find_port, service};
use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use crate::address::pod_address;
use crate::capacity::{capacity_annotation_set_correctly, truncate};
use ecm_controller::ChangedPods;
use ecm_types::repack::{RawEndpoint, repack, repack_changed, repacked_eq};

/// The subsets a Service should have, with counts for logging.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct DesiredSubsets {
    /// Packed, sorted subsets (not yet truncated).
    pub subsets: Vec<EndpointSubset>,
    /// Ready (address, port) pairs that went into them.
    pub ready: usize,
    /// Not-ready (address, port) pairs that went into them.
    pub not_ready: usize,
}

/// Computes the subsets of `svc` from the pods its selector selects.
///
/// A pod contributes when it should be an endpoint (not terminal, has an IP,
/// not being deleted unless the Service publishes not-ready addresses) and
/// has an IP of the Service's family. It is ready when the Service publishes
/// not-ready addresses or its Ready condition is true. It serves each Service
/// port its containers resolve (see [`find_port`]); a headless Service
/// without ports lists its pods with no ports, any other port-less Service
/// gets nothing.
pub(crate) fn desired_subsets<'a>(svc: &Service, pods: impl IntoIterator<Item = &'a PodProjection>) -> DesiredSubsets {
    let mut raw = Vec::new();
    for pod in pods {
        pod_endpoints(svc, pod, &mut raw);
    }
    counted(repack(raw))
}

/// [`desired_subsets`] after only the pods in `changed` changed since
/// `stored` was written from all of them: the stored subsets without the
/// changed pods' addresses, plus the changed pods' current ones. Valid only
/// for subsets this controller wrote in full (not truncated).
pub(crate) fn changed_subsets(svc: &Service, stored: &[EndpointSubset], changed: &ChangedPods) -> DesiredSubsets {
    let mut raw = Vec::new();
    for pod in &changed.selected {
        pod_endpoints(svc, pod, &mut raw);
    }
    let of_changed_pod = |address: &EndpointAddress| {
        address
            .target_ref
            .as_ref()
            .and_then(|target| target.name.as_deref())
            .is_some_and(|name| changed.names.contains(name))
    };
    counted(repack_changed(stored, of_changed_pod, raw))
}

/// `subsets` with their (address, port) pairs counted.
fn counted(subsets: Vec<EndpointSubset>) -> DesiredSubsets {
    let pairs =
        |addresses: &Option<Vec<EndpointAddress>>, ports: usize| addresses.as_ref().map_or(0, Vec::len) * ports.max(1);
    let (mut ready, mut not_ready) = (0, 0);
    for subset in &subsets {
        let ports = subset.ports.as_ref().map_or(0, Vec::len);
        ready += pairs(&subset.addresses, ports);
        not_ready += pairs(&subset.not_ready_addresses, ports);
    }
    DesiredSubsets {
        subsets,
        ready,
        not_ready,
    }
}

/// Appends to `raw` what `pod` contributes to `svc`'s Endpoints: one entry
/// per Service port it serves (see [`desired_subsets`] for the rules).
fn pod_endpoints(svc: &Service, pod: &PodProjection, raw: &mut Vec<RawEndpoint>) {
    let publish_not_ready = service::publish_not_ready_addresses(svc);
    if !pod.should_be_endpoint(publish_not_ready) {
        tracing::trace!(pod = pod.name(), "pod is not an endpoint");
        return;
    }
    let Some(address) = pod_address(svc, pod) else {
        tracing::debug!(pod = pod.name(), "pod has no IP of the service's family");
        return;
    };
    let ready = publish_not_ready || pod.is_ready();
    let ports = service::ports(svc);
    if ports.is_empty() {
        if service::is_headless(svc) {
            raw.push(RawEndpoint {
                address,
                port: None,
                ready,
            });
        }
        return;
    }
    for service_port in ports {
        let Some(number) = find_port(pod, service_port) else {
            tracing::trace!(pod = pod.name(), port = ?service_port.name, "pod does not serve the port");
            continue;
        };
        raw.push(RawEndpoint {
            address: address.clone(),
            port: Some(EndpointPort {
                name: service_port.name.clone().filter(|n| !n.is_empty()),
                port: number,
                protocol: Some(service_port_protocol(service_port).to_owned()),
                app_protocol: service_port.app_protocol.clone(),
            }),
            ready,
        });
    }
}

/// Whether stored Endpoints labels are what this controller would write for a
/// Service with `service_labels` (v1.36's rule): the managed-by label must be
/// there, and the rest, headless label aside, must equal the Service's
/// labels. A wrong headless label alone is never corrected by itself.
pub(crate) fn labels_correct(
    stored: Option<&BTreeMap<String, String>>,
    service_labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let Some(stored) = stored else {
        return false;
    };
    if stored.get(LABEL_ENDPOINTS_MANAGED_BY).map(String::as_str) != Some(MANAGED_BY_ENDPOINTS_CONTROLLER) {
        return false;
    }
    let mut rest = stored.clone();
    rest.remove(LABEL_ENDPOINTS_MANAGED_BY);
    rest.remove(LABEL_HEADLESS);
    map_eq(Some(&rest), service_labels)
}

/// What a sync should write.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Plan {
    /// The stored object is already right.
    Unchanged,
    /// No Endpoints object exists: create this one.
    Create(Endpoints),
    /// Replace the stored object with this one (same resourceVersion).
    Update(Endpoints),
}

/// Decides what to write for `svc`, given the stored object (if any), the
/// desired subsets and the trigger time of this sync.
pub(crate) fn plan(
    current: Option<&Endpoints>,
    svc: &Service,
    subsets: Vec<EndpointSubset>,
    trigger: Option<Timestamp>,
) -> Plan {
    let exists = current.is_some_and(|c| c.metadata.resource_version.as_deref().is_some_and(|rv| !rv.is_empty()));
    if let Some(stored) = current.filter(|_| exists) {
        let stored_subsets = stored.subsets.as_deref().unwrap_or_default();
        let same_subsets =
            endpoint_subsets_eq(Some(stored_subsets), Some(&subsets)) || repacked_eq(stored_subsets, &subsets);
        if same_subsets
            && labels_correct(stored.metadata.labels.as_ref(), svc.metadata.labels.as_ref())
            && capacity_annotation_set_correctly(stored.metadata.annotations.as_ref(), stored_subsets)
        {
            return Plan::Unchanged;
        }
    }
    let mut object = match current.filter(|_| exists) {
        // The subsets are replaced below: only the metadata is kept.
        Some(stored) => Endpoints {
            metadata: stored.metadata.clone(),
            subsets: None,
        },
        None => Endpoints {
            metadata: ObjectMeta {
                name: svc.metadata.name.clone(),
                namespace: svc.metadata.namespace.clone(),
                ..ObjectMeta::default()
            },
            subsets: None,
        },
    };
    let mut subsets = subsets;
    let truncated = truncate(&mut subsets);
    object.subsets = Some(subsets);

    let mut annotations = object.metadata.annotations.take().unwrap_or_default();
    match trigger {
        Some(time) => annotations.insert(
            ANNOTATION_LAST_CHANGE_TRIGGER_TIME.to_owned(),
            format_trigger_time(time),
        ),
        None => annotations.remove(ANNOTATION_LAST_CHANGE_TRIGGER_TIME),
    };
    if truncated {
        annotations.insert(ANNOTATION_OVER_CAPACITY.to_owned(), OVER_CAPACITY_TRUNCATED.to_owned());
    } else {
        annotations.remove(ANNOTATION_OVER_CAPACITY);
    }
    object.metadata.annotations = (!annotations.is_empty()).then_some(annotations);

    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    if service::is_service_ip_set(svc) {
        labels.remove(LABEL_HEADLESS);
    } else {
        labels.insert(LABEL_HEADLESS.to_owned(), String::new());
    }
    labels.insert(
        LABEL_ENDPOINTS_MANAGED_BY.to_owned(),
        MANAGED_BY_ENDPOINTS_CONTROLLER.to_owned(),
    );
    object.metadata.labels = Some(labels);

    if exists {
        Plan::Update(object)
    } else {
        Plan::Create(object)
    }
}

#[cfg(test)]
mod changed_tests;
#[cfg(test)]
mod tests;
