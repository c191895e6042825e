//! Decoding a Pod's JSON straight into a [`PodProjection`].
//!
//! A pod informer that watches `PodProjection` itself (it implements
//! [`kube::Resource`] as a Pod) never builds the full `Pod`: serde reads only
//! the fields below and skips the rest of the document (container specs,
//! `managedFields`, annotations, owner references, statuses…) without
//! allocating them. The result is exactly `PodProjection::from(pod)` for the
//! same document; the tests hold the two side by side.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Deserializer};

use super::{NamedPort, PodProjection, ReadyCondition};
use crate::wellknown::DEFAULT_PROTOCOL;

impl<'de> Deserialize<'de> for PodProjection {
    /// Reads a Pod's JSON (or any serde format of it), keeping only the
    /// projection's fields.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        WirePod::deserialize(deserializer).map(Self::from)
    }
}

/// The fields of a Pod a projection keeps, as they appear on the wire.
#[derive(Deserialize, Default)]
#[serde(default)]
struct WirePod {
    metadata: WireMeta,
    spec: Option<WireSpec>,
    status: Option<WireStatus>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireSpec {
    node_name: Option<String>,
    hostname: Option<String>,
    subdomain: Option<String>,
    containers: Option<Vec<WireContainer>>,
    init_containers: Option<Vec<WireContainer>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireContainer {
    ports: Option<Vec<WirePort>>,
    restart_policy: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WirePort {
    name: Option<String>,
    protocol: Option<String>,
    container_port: i32,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireStatus {
    phase: Option<String>,
    #[serde(rename = "podIP")]
    pod_ip: Option<String>,
    #[serde(rename = "podIPs")]
    pod_ips: Option<Vec<WirePodIp>>,
    conditions: Option<Vec<WireCondition>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WirePodIp {
    ip: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireCondition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
    last_transition_time: Option<Time>,
}

impl From<WirePod> for PodProjection {
    fn from(pod: WirePod) -> Self {
        let meta = pod.metadata;
        let metadata = ObjectMeta {
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            resource_version: meta.resource_version,
            labels: meta.labels.filter(|labels| !labels.is_empty()),
            creation_timestamp: meta.creation_timestamp,
            deletion_timestamp: meta.deletion_timestamp,
            ..ObjectMeta::default()
        };
        let spec = pod.spec.unwrap_or_default();
        let sidecars = spec
            .init_containers
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        let named_ports = spec
            .containers
            .unwrap_or_default()
            .into_iter()
            .chain(sidecars)
            .flat_map(|c| c.ports.unwrap_or_default())
            .filter_map(|port| {
                let name = port.name.filter(|name| !name.is_empty())?;
                Some(NamedPort {
                    name,
                    protocol: port.protocol.unwrap_or_else(|| DEFAULT_PROTOCOL.to_owned()),
                    container_port: port.container_port,
                })
            })
            .collect();
        let status = pod.status.unwrap_or_default();
        let ready = status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| ReadyCondition {
                is_true: c.status == "True",
                last_transition_time: c.last_transition_time.map(|t| t.0),
            });
        Self {
            metadata,
            node_name: spec.node_name,
            hostname: spec.hostname,
            subdomain: spec.subdomain,
            named_ports,
            phase: status.phase,
            pod_ip: status.pod_ip,
            pod_ips: status.pod_ips.unwrap_or_default().into_iter().map(|ip| ip.ip).collect(),
            ready,
        }
    }
}
