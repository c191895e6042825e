//! Builders shared by the unit tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use ecm_informer::ObjectKey;
use ecm_types::IpFamily;
use ecm_types::endpoint_slice::set_endpoints;
use ecm_types::wellknown::LABEL_TOPOLOGY_ZONE;
use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeStatus, ObjectReference, Service};
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointHints, EndpointPort, EndpointSlice, ForNode, ForZone,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::desired::NodeLookup;
use crate::slice::new_slice;

/// A Ready node in `zone` (no zone label when `None`) with `cpu` allocatable.
pub(crate) fn node(name: &str, zone: Option<&str>, cpu: &str) -> Node {
    let mut node = Node::default();
    node.metadata.name = Some(name.to_owned());
    node.metadata.labels = zone.map(|z| BTreeMap::from([(LABEL_TOPOLOGY_ZONE.to_owned(), z.to_owned())]));
    node.status = Some(NodeStatus {
        conditions: Some(vec![NodeCondition {
            type_: "Ready".to_owned(),
            status: "True".to_owned(),
            ..NodeCondition::default()
        }]),
        allocatable: Some(BTreeMap::from([("cpu".to_owned(), Quantity(cpu.to_owned()))])),
        ..NodeStatus::default()
    });
    node
}

/// A node lookup over `nodes`.
pub(crate) fn lookup(nodes: Vec<Node>) -> impl NodeLookup {
    let nodes: Vec<Arc<Node>> = nodes.into_iter().map(Arc::new).collect();
    move |name: &str| nodes.iter().find(|n| n.metadata.name.as_deref() == Some(name)).cloned()
}

/// A ready endpoint for pod `pod` (namespace `ns`) with `ip`.
pub(crate) fn endpoint(pod: &str, ip: &str) -> Endpoint {
    Endpoint {
        addresses: vec![ip.to_owned()],
        conditions: Some(EndpointConditions {
            ready: Some(true),
            serving: Some(true),
            terminating: Some(false),
        }),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".to_owned()),
            namespace: Some("ns".to_owned()),
            name: Some(pod.to_owned()),
            uid: Some(format!("uid-{pod}")),
            ..ObjectReference::default()
        }),
        ..Endpoint::default()
    }
}

/// `endpoint` placed in `zone` on `node`.
pub(crate) fn endpoint_at(pod: &str, ip: &str, zone: Option<&str>, node: Option<&str>) -> Endpoint {
    Endpoint {
        zone: zone.map(str::to_owned),
        node_name: node.map(str::to_owned),
        ..endpoint(pod, ip)
    }
}

/// Marks an endpoint not ready.
pub(crate) fn not_ready(mut endpoint: Endpoint) -> Endpoint {
    endpoint.conditions = Some(EndpointConditions {
        ready: Some(false),
        serving: Some(false),
        terminating: Some(false),
    });
    endpoint
}

/// Gives an endpoint zone hints (and node hints when `nodes` is not empty).
pub(crate) fn hinted(mut endpoint: Endpoint, zones: &[&str], nodes: &[&str]) -> Endpoint {
    endpoint.hints = Some(EndpointHints {
        for_zones: (!zones.is_empty()).then(|| zones.iter().map(|z| ForZone { name: (*z).to_owned() }).collect()),
        for_nodes: (!nodes.is_empty()).then(|| nodes.iter().map(|n| ForNode { name: (*n).to_owned() }).collect()),
    });
    endpoint
}

/// The zone hints of an endpoint, as names.
pub(crate) fn zone_hints(endpoint: &Endpoint) -> Vec<&str> {
    endpoint
        .hints
        .as_ref()
        .and_then(|h| h.for_zones.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|z| z.name.as_str())
        .collect()
}

/// A TCP port as the reconciler writes it.
pub(crate) fn tcp_port(name: &str, port: i32) -> EndpointPort {
    EndpointPort {
        name: Some(name.to_owned()),
        port: Some(port),
        protocol: Some("TCP".to_owned()),
        app_protocol: None,
    }
}

/// An existing slice of `svc` as the API server stores it: the reconciler's
/// own new slice, named, with a uid and generation 1.
pub(crate) fn stored_slice(
    svc: &Service,
    name: &str,
    ports: &[EndpointPort],
    endpoints: Vec<Endpoint>,
) -> EndpointSlice {
    let mut slice = new_slice(svc, IpFamily::V4, ports);
    slice.metadata.generate_name = None;
    slice.metadata.name = Some(name.to_owned());
    slice.metadata.uid = Some(format!("uid-{name}"));
    slice.metadata.generation = Some(1);
    slice.metadata.resource_version = Some("7".to_owned());
    set_endpoints(&mut slice, endpoints);
    slice
}

/// A plain slice holding `endpoints`, for the hint functions.
pub(crate) fn slice_of(name: &str, endpoints: Vec<Endpoint>) -> EndpointSlice {
    let mut slice = EndpointSlice::default();
    slice.metadata.name = Some(name.to_owned());
    slice.address_type = "IPv4".to_owned();
    set_endpoints(&mut slice, endpoints);
    slice
}

/// The key of the test Service `ns/web`.
pub(crate) fn web() -> ObjectKey {
    ObjectKey::new("ns", "web")
}

/// Metric values captured while running a closure under a local
/// `DebuggingRecorder`, keyed `name` or `name{label=value,...}` (labels
/// sorted).
#[derive(Debug, Default)]
pub(crate) struct Captured(std::collections::HashMap<String, metrics_util::debugging::DebugValue>);

/// Runs `f` with a fresh local metrics recorder and returns its result and
/// the metrics it recorded.
pub(crate) fn capture<T>(f: impl FnOnce() -> T) -> (T, Captured) {
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let result = metrics::with_local_recorder(&recorder, f);
    let values = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
            labels.sort();
            let id = if labels.is_empty() {
                key.name().to_owned()
            } else {
                format!("{}{{{}}}", key.name(), labels.join(","))
            };
            (id, value)
        })
        .collect();
    (result, Captured(values))
}

impl Captured {
    /// A gauge's value, if it was set.
    pub(crate) fn gauge(&self, id: &str) -> Option<f64> {
        match self.0.get(id) {
            Some(metrics_util::debugging::DebugValue::Gauge(v)) => Some(v.0),
            _ => None,
        }
    }

    /// A counter's value (0 when never incremented).
    pub(crate) fn counter(&self, id: &str) -> u64 {
        match self.0.get(id) {
            Some(metrics_util::debugging::DebugValue::Counter(v)) => *v,
            _ => 0,
        }
    }

    /// A histogram's observations (empty when none).
    pub(crate) fn histogram(&self, id: &str) -> Vec<f64> {
        match self.0.get(id) {
            Some(metrics_util::debugging::DebugValue::Histogram(v)) => v.iter().map(|f| f.0).collect(),
            _ => Vec::new(),
        }
    }
}
