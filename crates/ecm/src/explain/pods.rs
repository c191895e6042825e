//! The verdict on one pod for one Service: every rule the controllers apply
//! to it, asked of the functions they run (`PodProjection`'s rules,
//! `find_port`, the Endpoints controller's address), and whether it ends
//! up in the desired objects the controllers' plans computed.

use ecm_types::{IpFamily, PodProjection, find_port, service};
use k8s_openapi::api::core::v1::{Endpoints, Node, Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use ecm_types::endpoint_slice::endpoints as slice_endpoints;
use ecm_types::wellknown::LABEL_TOPOLOGY_ZONE;

/// How one Service port resolves on the pod.
#[derive(Clone, Debug, Serialize)]
pub struct PortResolution {
    /// The Service port, `name:port/protocol`.
    pub service_port: String,
    /// The target port as written (number or name).
    pub target: String,
    /// The container port it resolves to, if any.
    pub resolved: Option<i32>,
    /// How: a number is used as is; a name is looked up among the pod's
    /// named container ports (containers, then native sidecars) with the
    /// Service port's protocol.
    pub how: String,
}

/// One endpoint the pod becomes in the desired slices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SliceEndpoint {
    /// `IPv4` or `IPv6`.
    pub address_type: String,
    /// Its addresses.
    pub addresses: Vec<String>,
    /// `conditions.ready`.
    pub ready: Option<bool>,
    /// `conditions.serving`.
    pub serving: Option<bool>,
    /// `conditions.terminating`.
    pub terminating: Option<bool>,
    /// `zone`.
    pub zone: Option<String>,
    /// Zones (and nodes) hinted.
    pub hints: Vec<String>,
}

/// The EndpointSlice controller's verdict.
#[derive(Clone, Debug, Serialize)]
pub struct SliceVerdict {
    /// The endpoints the pod becomes (none when left out).
    pub endpoints: Vec<SliceEndpoint>,
    /// Why it is in or out, and with which conditions.
    pub reason: String,
}

/// The Endpoints controller's verdict.
#[derive(Clone, Debug, Serialize)]
pub struct EndpointsVerdict {
    /// The address in the Endpoints object, if any.
    pub ip: Option<String>,
    /// Listed under `addresses` (true) or `notReadyAddresses` (false).
    pub ready: Option<bool>,
    /// Why.
    pub reason: String,
}

/// Everything said about one pod.
#[derive(Clone, Debug, Serialize)]
pub struct PodVerdict {
    /// The pod's name.
    pub name: String,
    /// Whether the Service's selector matches the pod's labels.
    pub selected: bool,
    /// `status.phase`.
    pub phase: String,
    /// Its IPs with their families.
    pub ips: Vec<String>,
    /// Whether it has a `deletionTimestamp`.
    pub deleting: bool,
    /// Its `Ready` condition: `True`, `False` or `absent`.
    pub ready_condition: String,
    /// The hostname rule's outcome.
    pub hostname: String,
    /// `spec.nodeName`, the node's zone, or why there is none.
    pub node: String,
    /// Each Service port's target resolution.
    pub ports: Vec<PortResolution>,
    /// EndpointSlice controller (when enabled and the Service is synced).
    pub endpoint_slice: Option<SliceVerdict>,
    /// Endpoints controller (when enabled and the Service is synced).
    pub endpoints: Option<EndpointsVerdict>,
}

fn port_resolution(pod: &PodProjection, port: &ServicePort) -> PortResolution {
    let protocol = ecm_types::ports::service_port_protocol(port);
    let resolved = find_port(pod, port);
    let (target, how) = match &port.target_port {
        Some(IntOrString::String(name)) => {
            let candidates: Vec<String> = pod
                .named_ports
                .iter()
                .filter(|p| &p.name == name)
                .map(|p| format!("{}/{}:{}", p.name, p.protocol, p.container_port))
                .collect();
            let how = match resolved {
                Some(n) => format!("named port {name}/{protocol} found: {n}"),
                None if candidates.is_empty() => format!("no container port named {name}: port left out"),
                None => format!(
                    "no container port named {name} with protocol {protocol} (has {}): port left out",
                    candidates.join(", ")
                ),
            };
            (name.clone(), how)
        }
        Some(IntOrString::Int(n)) => (n.to_string(), "numeric target".to_owned()),
        None => (port.port.to_string(), "no targetPort: the Service port".to_owned()),
    };
    PortResolution {
        service_port: format!(
            "{}:{}/{}",
            port.name.as_deref().unwrap_or_default(),
            port.port,
            protocol
        ),
        target,
        resolved,
        how,
    }
}

fn hostname_rule(svc: &Service, pod: &PodProjection) -> String {
    let (namespace, name) = (
        svc.metadata.namespace.as_deref().unwrap_or_default(),
        svc.metadata.name.as_deref().unwrap_or_default(),
    );
    if pod.should_set_hostname(namespace, name) {
        return format!(
            "{} (spec.subdomain names this Service)",
            pod.hostname.as_deref().unwrap_or_default()
        );
    }
    match (
        pod.hostname.as_deref().filter(|h| !h.is_empty()),
        pod.subdomain.as_deref(),
    ) {
        (None, _) => "none (no spec.hostname)".to_owned(),
        (Some(h), sub) => format!(
            "not set: spec.hostname {h} but spec.subdomain is {:?}, not {name:?}",
            sub.unwrap_or_default()
        ),
    }
}

fn slice_endpoints_of(pod: &PodProjection, slices: &[EndpointSlice]) -> Vec<SliceEndpoint> {
    slices
        .iter()
        .flat_map(|s| slice_endpoints(s).iter().map(move |e| (s, e)))
        .filter(|(_, e)| e.target_ref.as_ref().and_then(|t| t.name.as_deref()) == Some(pod.name()))
        .map(|(slice, e)| {
            let conditions = e.conditions.clone().unwrap_or_default();
            let hints = e.hints.as_ref();
            let zones = hints.and_then(|h| h.for_zones.clone()).unwrap_or_default();
            let nodes = hints.and_then(|h| h.for_nodes.clone()).unwrap_or_default();
            SliceEndpoint {
                address_type: slice.address_type.clone(),
                addresses: e.addresses.clone(),
                ready: conditions.ready,
                serving: conditions.serving,
                terminating: conditions.terminating,
                zone: e.zone.clone(),
                hints: zones
                    .into_iter()
                    .map(|z| format!("zone {}", z.name))
                    .chain(nodes.into_iter().map(|n| format!("node {}", n.name)))
                    .collect(),
            }
        })
        .collect()
}

/// Inputs of a slice verdict besides the pod.
pub(super) struct SliceContext<'a> {
    /// The desired slices.
    pub(super) slices: &'a [EndpointSlice],
    /// Pods skipped for an unknown node.
    pub missing_nodes: &'a [(String, String)],
}

fn slice_verdict(svc: &Service, pod: &PodProjection, selected: bool, ctx: &SliceContext<'_>) -> SliceVerdict {
    let endpoints = slice_endpoints_of(pod, ctx.slices);
    let publish = service::publish_not_ready_addresses(svc);
    let reason = if let Some(first) = endpoints.first() {
        match (first.ready, first.serving, first.terminating) {
            (Some(true), _, _) if publish => "ready: the Service publishes not-ready addresses".to_owned(),
            (Some(true), _, _) => "ready: Ready and not terminating".to_owned(),
            (_, _, Some(true)) => "not ready: terminating (serving = its Ready condition)".to_owned(),
            _ => "not ready: its Ready condition is not True".to_owned(),
        }
    } else if !selected {
        "left out: the selector does not match".to_owned()
    } else if pod.is_terminal() {
        format!(
            "left out: phase {} is terminal",
            pod.phase.as_deref().unwrap_or_default()
        )
    } else if !pod.has_ip() {
        "left out: no IP yet".to_owned()
    } else if let Some((_, node)) = ctx.missing_nodes.iter().find(|(p, _)| p == pod.name()) {
        format!("left out: node {node:?} is not known (the sync reports an error and retries)")
    } else {
        "left out: no IP of the Service's address types".to_owned()
    };
    SliceVerdict { endpoints, reason }
}

fn endpoints_verdict(svc: &Service, pod: &PodProjection, selected: bool, desired: &Endpoints) -> EndpointsVerdict {
    let publish = service::publish_not_ready_addresses(svc);
    let address = ecm_endpoints::explain::pod_address(svc, pod);
    let listed = |ready: bool| {
        desired.subsets.iter().flatten().any(|s| {
            let list = if ready { &s.addresses } else { &s.not_ready_addresses };
            list.iter()
                .flatten()
                .any(|a| a.target_ref.as_ref().and_then(|t| t.name.as_deref()) == Some(pod.name()))
        })
    };
    let none = |reason: String| EndpointsVerdict {
        ip: None,
        ready: None,
        reason,
    };
    if !selected {
        return none("left out: the selector does not match".to_owned());
    }
    if !pod.should_be_endpoint(publish) {
        let why = if pod.is_terminal() {
            format!("phase {} is terminal", pod.phase.as_deref().unwrap_or_default())
        } else if !pod.has_ip() {
            "no IP yet".to_owned()
        } else {
            "being deleted and the Service does not publish not-ready addresses".to_owned()
        };
        return none(format!("left out: {why}"));
    }
    let Some(address) = address else {
        return none("left out: no IP of the Service's primary family".to_owned());
    };
    for ready in [true, false] {
        if listed(ready) {
            let reason = match (ready, publish) {
                (true, true) => "addresses: the Service publishes not-ready addresses",
                (true, false) => "addresses: Ready",
                (false, _) => "notReadyAddresses: its Ready condition is not True",
            };
            return EndpointsVerdict {
                ip: Some(address.ip),
                ready: Some(ready),
                reason: reason.to_owned(),
            };
        }
    }
    let reason = if service::ports(svc).is_empty() {
        "left out: the Service has no ports and is not headless"
    } else if service::ports(svc).iter().all(|p| find_port(pod, p).is_none()) {
        "left out: the pod resolves none of the Service's ports"
    } else {
        "left out: the object is over capacity (1000 addresses) and was truncated"
    };
    none(reason.to_owned())
}

/// What the controllers decided, as inputs to [`verdict`].
pub(super) struct Decisions<'a> {
    /// The EndpointSlice controller's desired slices, when it syncs the
    /// Service.
    pub slices: Option<SliceContext<'a>>,
    /// The Endpoints controller's desired object, when it syncs the Service.
    pub endpoints: Option<&'a Endpoints>,
}

/// The verdict on `pod` for `svc`.
pub(super) fn verdict(
    svc: &Service,
    pod: &PodProjection,
    node: Option<&Node>,
    decisions: &Decisions<'_>,
) -> PodVerdict {
    let selected = service::selector(svc).is_some_and(|s| service::selector_matches(s, pod.labels()));
    let ips = pod
        .pod_ips
        .iter()
        .map(|ip| match IpFamily::of(ip) {
            Some(family) => format!("{ip} ({})", family.as_api()),
            None => format!("{ip} (not an IP: skipped)"),
        })
        .collect();
    let node_text = match (pod.node_name.as_deref().filter(|n| !n.is_empty()), node) {
        (None, _) => "none (not scheduled)".to_owned(),
        (Some(name), None) => format!("{name} (not known)"),
        (Some(name), Some(node)) => {
            let zone = node
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_TOPOLOGY_ZONE))
                .filter(|z| !z.is_empty());
            match zone {
                Some(zone) => format!("{name}, zone {zone}"),
                None => format!("{name}, no zone label"),
            }
        }
    };
    PodVerdict {
        name: pod.name().to_owned(),
        selected,
        phase: pod.phase.clone().unwrap_or_else(|| "-".to_owned()),
        ips,
        deleting: pod.is_terminating(),
        ready_condition: match &pod.ready {
            Some(c) if c.is_true => "True".to_owned(),
            Some(_) => "False".to_owned(),
            None => "absent".to_owned(),
        },
        hostname: hostname_rule(svc, pod),
        node: node_text,
        ports: service::ports(svc).iter().map(|p| port_resolution(pod, p)).collect(),
        endpoint_slice: decisions
            .slices
            .as_ref()
            .map(|ctx| slice_verdict(svc, pod, selected, ctx)),
        endpoints: decisions
            .endpoints
            .map(|desired| endpoints_verdict(svc, pod, selected, desired)),
    }
}
