//! [`Report`]: everything `ecm explain service` says about one Service, and
//! [`explain`], which computes it from the caches.

use std::collections::{BTreeMap, BTreeSet};

use ecm_endpointslice::TopologyCache;
use ecm_informer::ObjectKey;
use ecm_types::service;
use serde::Serialize;

use super::pods::{self, PodVerdict};
use crate::compare::Difference;
use crate::controllers::ControllerName;
use crate::parity::{Caches, Limits, endpoints_view, endpointslice_view, mirroring_view};

/// One controller's objects for the Service: desired, current and the
/// differences.
#[derive(Clone, Debug, Serialize)]
pub struct Objects {
    /// What the controller would write (names left to the API server).
    pub desired: Vec<serde_json::Value>,
    /// What exists.
    pub current: Vec<serde_json::Value>,
    /// What differs, semantically.
    pub differences: Vec<Difference>,
}

/// A hint event the plan records: why hints are set or withheld.
#[derive(Clone, Debug, Serialize)]
pub struct HintNote {
    /// The address type.
    pub address_type: String,
    /// `TopologyAwareHintsEnabled` or `TopologyAwareHintsDisabled`.
    pub reason: String,
    /// Upstream's message (the reason hints are withheld).
    pub message: String,
}

/// The mirroring controller's verdict on the Endpoints of the Service's name.
#[derive(Clone, Debug, Serialize)]
pub struct Mirroring {
    /// `Mirror` or why not.
    pub decision: String,
    /// In words.
    pub reason: String,
    /// Addresses left out as not IPs.
    pub invalid_addresses: usize,
    /// Addresses left out over `--mirroring-max-endpoints-per-subset`.
    pub addresses_skipped: usize,
    /// Its slices.
    pub objects: Objects,
}

/// Everything `ecm explain service` says.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `namespace/name`.
    pub service: String,
    /// Whether the Service exists.
    pub found: bool,
    /// Its selector (`None`: no selector).
    pub selector: Option<BTreeMap<String, String>>,
    /// `spec.type`.
    pub service_type: String,
    /// Whether it is headless.
    pub headless: bool,
    /// `spec.publishNotReadyAddresses`.
    pub publish_not_ready_addresses: bool,
    /// Its ports, `name:port->target/protocol`.
    pub ports: Vec<String>,
    /// How hints are chosen: the topology annotation or trafficDistribution.
    pub hints_mode: String,
    /// The hint events the EndpointSlice plan records.
    pub hints: Vec<HintNote>,
    /// One verdict per pod.
    pub pods: Vec<PodVerdict>,
    /// The EndpointSlice controller's slices (when enabled and syncing).
    pub endpoint_slices: Option<Objects>,
    /// The Endpoints controller's object (when enabled and syncing).
    pub endpoints: Option<Objects>,
    /// Whether the Endpoints object is cut to 1000 addresses
    /// (`endpoints.kubernetes.io/over-capacity: truncated`).
    pub endpoints_truncated: bool,
    /// The mirroring controller's verdict (when enabled).
    pub mirroring: Option<Mirroring>,
}

impl Report {
    /// Every difference, by controller.
    pub fn differences(&self) -> impl Iterator<Item = (&'static str, &Difference)> {
        let slices = self.endpoint_slices.iter().flat_map(|o| &o.differences);
        let endpoints = self.endpoints.iter().flat_map(|o| &o.differences);
        let mirroring = self.mirroring.iter().flat_map(|m| &m.objects.differences);
        slices
            .map(|d| (ControllerName::EndpointSlice.canonical(), d))
            .chain(endpoints.map(|d| (ControllerName::Endpoints.canonical(), d)))
            .chain(mirroring.map(|d| (ControllerName::Mirroring.canonical(), d)))
    }
}

/// What to explain.
#[derive(Clone, Debug)]
pub struct Request {
    /// The Service.
    pub service: ObjectKey,
    /// Only this pod (also when the selector does not match it).
    pub pod: Option<String>,
    /// The controllers whose verdicts to give.
    pub controllers: BTreeSet<ControllerName>,
    /// Slice and subset sizes.
    pub limits: Limits,
}

fn values<T: Serialize>(objects: &[T]) -> Vec<serde_json::Value> {
    objects.iter().filter_map(|o| serde_json::to_value(o).ok()).collect()
}

/// Explains `request.service` from `caches`.
pub fn explain(caches: &Caches, request: &Request) -> Report {
    let key = &request.service;
    let svc = caches.services.get(key.namespace(), key.name());
    let topology = TopologyCache::new();
    let nodes = caches.nodes.list_all();
    topology.set_nodes(nodes.iter().map(AsRef::as_ref));
    let enabled = |name| request.controllers.contains(&name);

    let slices = enabled(ControllerName::EndpointSlice)
        .then(|| endpointslice_view(caches, &topology, request.limits, key))
        .flatten();
    let endpoints = enabled(ControllerName::Endpoints)
        .then(|| endpoints_view(caches, key))
        .flatten();
    let mirroring = enabled(ControllerName::Mirroring).then(|| mirroring_view(caches, request.limits, key));

    let mut pods_out = Vec::new();
    if let Some(svc) = &svc {
        let desired_endpoints = endpoints.as_ref().and_then(|v| v.desired.as_ref()).map(|d| &d.object);
        let decisions = pods::Decisions {
            slices: slices.as_ref().map(|v| pods::SliceContext {
                slices: &v.desired.slices,
                missing_nodes: &v.desired.missing_nodes,
            }),
            endpoints: desired_endpoints,
        };
        let candidates = caches.pods.list(key.namespace(), &ecm_informer::Selector::everything());
        for pod in candidates {
            let selected = service::selector(svc).is_some_and(|s| service::selector_matches(s, pod.labels()));
            let wanted = match &request.pod {
                Some(name) => pod.name() == name,
                None => selected,
            };
            if wanted {
                let node = pod.node_name.as_deref().and_then(|name| caches.nodes.get("", name));
                pods_out.push(pods::verdict(svc, &pod, node.as_deref(), &decisions));
            }
        }
        pods_out.sort_by(|a, b| a.name.cmp(&b.name));
    }

    let spec = svc.as_ref().and_then(|s| s.spec.clone()).unwrap_or_default();
    let hints_mode = match &slices {
        Some(v) if v.desired.topology_mode == "Auto" => "topology-mode Auto (hints by zone CPU share)".to_owned(),
        Some(v) => match &v.desired.traffic_distribution {
            Some(td) => format!("trafficDistribution {td}"),
            None => "none".to_owned(),
        },
        None => "-".to_owned(),
    };
    Report {
        service: key.to_string(),
        found: svc.is_some(),
        selector: svc.as_deref().and_then(service::selector).cloned(),
        service_type: spec.type_.clone().unwrap_or_else(|| "ClusterIP".to_owned()),
        headless: svc.as_deref().is_some_and(service::is_headless),
        publish_not_ready_addresses: svc.as_deref().is_some_and(service::publish_not_ready_addresses),
        ports: svc
            .as_deref()
            .map(service::ports)
            .unwrap_or_default()
            .iter()
            .map(|p| {
                let target = match &p.target_port {
                    Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => n.to_string(),
                    Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s)) => s.clone(),
                    None => p.port.to_string(),
                };
                format!(
                    "{}:{}->{}/{}",
                    p.name.as_deref().unwrap_or_default(),
                    p.port,
                    target,
                    ecm_types::ports::service_port_protocol(p)
                )
            })
            .collect(),
        hints_mode,
        hints: slices
            .as_ref()
            .map(|v| {
                v.desired
                    .hints
                    .iter()
                    .map(|(family, reason, message)| HintNote {
                        address_type: family.clone(),
                        reason: reason.clone(),
                        message: message.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        pods: pods_out,
        endpoint_slices: slices.map(|v| Objects {
            desired: values(&v.desired.slices),
            current: v.actual,
            differences: v.differences,
        }),
        endpoints_truncated: endpoints
            .as_ref()
            .and_then(|v| v.desired.as_ref())
            .is_some_and(|d| d.truncated),
        endpoints: endpoints.map(|v| Objects {
            desired: values(&v.desired.iter().map(|d| d.object.clone()).collect::<Vec<_>>()),
            current: v.actual,
            differences: v.differences,
        }),
        mirroring: mirroring.map(|v| Mirroring {
            decision: format!("{:?}", v.desired.decision),
            reason: v.desired.decision.reason().to_owned(),
            invalid_addresses: v.desired.invalid_addresses,
            addresses_skipped: v.desired.addresses_skipped,
            objects: Objects {
                desired: values(&v.desired.slices),
                current: v.actual,
                differences: v.differences,
            },
        }),
    }
}
