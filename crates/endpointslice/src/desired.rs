//! The endpoints a Service should have, per address type and port list,
//! computed from cached inputs only (upstream's first half of
//! `reconcileByAddressType`, with `podToEndpoint` and `getEndpointPorts`).
//!
//! Pure: no I/O, no shared state. The node lookup is a read of an informer
//! cache.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ecm_types::endpoint_set::EndpointSet;
use ecm_types::ip::canonical_ip;
use ecm_types::port_map::PortMapKey;
use ecm_types::ports::service_port_protocol;
use ecm_types::wellknown::LABEL_TOPOLOGY_ZONE;
use ecm_types::{IpFamily, PodProjection, find_port, service};
use k8s_openapi::api::core::v1::{Node, ObjectReference, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};

/// Finds a Node by name in the controller's cache.
///
/// Implemented for any `Fn(&str) -> Option<Arc<Node>>`, so a node lister
/// plugs in as `move |name: &str| lister.get("", name)`.
pub trait NodeLookup: Send + Sync {
    /// The node called `name`, or `None` when the cache has no such node.
    fn node(&self, name: &str) -> Option<Arc<Node>>;
}

impl<F> NodeLookup for F
where
    F: Fn(&str) -> Option<Arc<Node>> + Send + Sync,
{
    fn node(&self, name: &str) -> Option<Arc<Node>> {
        self(name)
    }
}

/// The address types a Service's slices carry (upstream's
/// `getAddressTypesForService`): one per `spec.ipFamilies` entry; without
/// ipFamilies (objects from API servers older than dual-stack) the family of
/// `spec.clusterIP`, or both families for a headless Service or one without
/// cluster IP.
///
/// Returned in a fixed order (IPv4 before IPv6) where upstream iterates a
/// set.
pub(crate) fn address_types(svc: &Service) -> BTreeSet<IpFamily> {
    let mut families: BTreeSet<IpFamily> = service::ip_families(svc)
        .iter()
        .filter_map(|f| IpFamily::from_api(f))
        .collect();
    if families.is_empty() {
        if service::is_service_ip_set(svc) {
            families.insert(IpFamily::of_or_ipv4(service::cluster_ip(svc)));
        } else {
            families.extend([IpFamily::V4, IpFamily::V6]);
        }
    }
    families
}

/// The ports a pod serves for a Service, in Service port order (upstream's
/// `getEndpointPorts`).
///
/// Each Service port whose target the pod resolves (see [`find_port`])
/// becomes `{name, port, protocol, appProtocol}`, the name being `""` for an
/// unnamed port. Ports the pod does not resolve are left out; a pod that
/// resolves none still becomes an endpoint, in a slice with no ports.
///
/// Upstream writes ports in the order of a hash of each port; ecm writes
/// them in Service port order. The order carries no meaning and slices are
/// grouped by [`PortMapKey`], which ignores it.
pub(crate) fn endpoint_ports(svc: &Service, pod: &PodProjection) -> Vec<EndpointPort> {
    service::ports(svc)
        .iter()
        .filter_map(|service_port| {
            let Some(number) = find_port(pod, service_port) else {
                tracing::trace!(
                    pod = pod.name(),
                    port = service_port.name.as_deref().unwrap_or_default(),
                    "pod does not serve the service port"
                );
                return None;
            };
            Some(EndpointPort {
                name: Some(service_port.name.clone().unwrap_or_default()),
                port: Some(number),
                protocol: Some(service_port_protocol(service_port).to_owned()),
                app_protocol: service_port.app_protocol.clone(),
            })
        })
        .collect()
}

/// The endpoint of `pod` in a slice of `family` for `svc` (upstream's
/// `podToEndpoint`).
///
/// - `addresses`: the pod's `status.podIPs` of that family, in canonical
///   form. Entries that are not IP addresses are skipped (upstream would
///   write `<nil>`, which the API server rejects).
/// - `conditions`: `serving` = pod Ready, `terminating` = pod being
///   deleted, `ready` = `publishNotReadyAddresses || (serving && !terminating)`.
/// - `nodeName` when set, `zone` from the node's zone label when the node is
///   known and the label is not empty, `hostname` per
///   [`PodProjection::should_set_hostname`], `targetRef` to the pod.
pub fn pod_to_endpoint(pod: &PodProjection, node: Option<&Node>, svc: &Service, family: IpFamily) -> Endpoint {
    let serving = pod.is_ready();
    let terminating = pod.is_terminating();
    let ready = service::publish_not_ready_addresses(svc) || (serving && !terminating);
    let zone = node
        .and_then(|n| n.metadata.labels.as_ref())
        .and_then(|labels| labels.get(LABEL_TOPOLOGY_ZONE))
        .filter(|zone| !zone.is_empty())
        .cloned();
    let svc_namespace = svc.metadata.namespace.as_deref().unwrap_or_default();
    let svc_name = svc.metadata.name.as_deref().unwrap_or_default();
    Endpoint {
        addresses: pod.ips_of_family(family).filter_map(canonical_ip).collect(),
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: pod
            .should_set_hostname(svc_namespace, svc_name)
            .then(|| pod.hostname.clone())
            .flatten(),
        node_name: pod.node_name.clone().filter(|n| !n.is_empty()),
        zone,
        target_ref: Some(ObjectReference {
            kind: Some("Pod".to_owned()),
            namespace: Some(pod.namespace().to_owned()),
            name: Some(pod.name().to_owned()),
            uid: pod.metadata.uid.clone(),
            ..ObjectReference::default()
        }),
        ..Endpoint::default()
    }
}

/// The desired endpoints of one port group: the pods that resolve the same
/// port list.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct DesiredGroup {
    /// The group's ports, as written into new slices.
    pub ports: Vec<EndpointPort>,
    /// The group's endpoints. May be empty: the group exists as soon as one
    /// eligible pod resolves these ports, even if that pod has no address of
    /// this family or was skipped for a missing node.
    pub endpoints: EndpointSet,
}

/// A pod left out because its node is not in the cache (and the Service
/// does not publish not-ready addresses). The sync reports it as an error
/// so that it is retried, after writing everything else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingNode {
    /// The pod's name.
    pub pod: String,
    /// The node name the pod refers to (possibly empty).
    pub node: String,
}

/// Everything a Service's pods ask for.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct DesiredEndpoints {
    /// For each address type of the Service, the port groups in key order.
    pub by_family: BTreeMap<IpFamily, BTreeMap<PortMapKey, DesiredGroup>>,
    /// Pods skipped because their node is unknown.
    pub missing_nodes: Vec<MissingNode>,
}

/// Computes the desired endpoints of `svc` from the pods its selector
/// matches.
///
/// A pod counts when it is not terminal and has an IP (terminating pods
/// included). Its node is looked up by `spec.nodeName`; when the node is
/// unknown the pod is skipped and reported in
/// [`DesiredEndpoints::missing_nodes`], unless the Service publishes
/// not-ready addresses, in which case it is kept without a zone.
pub(crate) fn desired_endpoints<'p, I>(svc: &Service, pods: I, nodes: &dyn NodeLookup) -> DesiredEndpoints
where
    I: IntoIterator<Item = &'p PodProjection>,
{
    let families = address_types(svc);
    let publish_not_ready = service::publish_not_ready_addresses(svc);
    let mut desired = DesiredEndpoints {
        by_family: families.iter().map(|f| (*f, BTreeMap::new())).collect(),
        missing_nodes: Vec::new(),
    };
    for pod in pods {
        if !pod.should_be_endpoint(true) {
            continue;
        }
        let ports = endpoint_ports(svc, pod);
        let key = PortMapKey::new(&ports);
        for groups in desired.by_family.values_mut() {
            groups.entry(key.clone()).or_insert_with(|| DesiredGroup {
                ports: ports.clone(),
                endpoints: EndpointSet::new(),
            });
        }
        let node_name = pod.node_name.as_deref().unwrap_or_default();
        let node = nodes.node(node_name);
        if node.is_none() && !publish_not_ready {
            tracing::info!(
                pod = pod.name(),
                node = node_name,
                "skipping pod for service, node not found"
            );
            desired.missing_nodes.push(MissingNode {
                pod: pod.name().to_owned(),
                node: node_name.to_owned(),
            });
            continue;
        }
        for (family, groups) in &mut desired.by_family {
            let endpoint = pod_to_endpoint(pod, node.as_deref(), svc, *family);
            if !endpoint.addresses.is_empty()
                && let Some(group) = groups.get_mut(&key)
            {
                group.endpoints.insert(endpoint);
            }
        }
    }
    desired
}

#[cfg(test)]
mod tests;
