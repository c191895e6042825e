//! The compact view of a Pod the endpoint controllers keep in their cache,
//! and the pod rules every controller shares.
//!
//! A full `Pod` as the API server returns it typically takes 10–20 KiB in
//! memory (much of it `managedFields`, container specs and statuses); the
//! controllers read only a dozen fields of it. [`PodProjection`] keeps exactly
//! those, so a pod informer that stores projections instead of pods holds a
//! small fraction of the memory (figures in `docs/benchmarks.md`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::jiff::tz::TimeZone;

use crate::ip::IpFamily;
use crate::wellknown::DEFAULT_PROTOCOL;

/// The parts of a Pod the endpoint controllers read, and nothing else.
///
/// Build one with `PodProjection::from(pod)`, or decode a Pod's JSON
/// straight into it (`serde_json::from_str::<PodProjection>`), which reads
/// only these fields and skips the rest without building them. It
/// implements [`kube::Resource`] with the Pod's kind, group and version, so
/// informers, listers and object keys treat it like a Pod, and an informer
/// can watch it directly (`Informer<PodProjection>`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodProjection {
    /// Metadata reduced to name, namespace, uid, resourceVersion, labels,
    /// creationTimestamp and deletionTimestamp.
    pub metadata: ObjectMeta,
    /// `spec.nodeName`.
    pub node_name: Option<String>,
    /// `spec.hostname`.
    pub hostname: Option<String>,
    /// `spec.subdomain`.
    pub subdomain: Option<String>,
    /// The named container ports a named `targetPort` can resolve to, in
    /// lookup order: ports of `spec.containers` in order, then those of
    /// native sidecars (`spec.initContainers` with `restartPolicy: Always`).
    /// Unnamed ports are left out: nothing can refer to them by name.
    pub named_ports: Vec<NamedPort>,
    /// `status.phase`.
    pub phase: Option<String>,
    /// `status.podIP`.
    pub pod_ip: Option<String>,
    /// The `ip` of each `status.podIPs` entry, in order.
    pub pod_ips: Vec<String>,
    /// The pod's `Ready` condition, if it has one.
    pub ready: Option<ReadyCondition>,
}

/// A named container port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedPort {
    /// The port name.
    pub name: String,
    /// The protocol, `TCP` when the container leaves it out.
    pub protocol: String,
    /// The container port number.
    pub container_port: i32,
}

/// A pod's `Ready` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyCondition {
    /// Whether the condition's status is exactly `"True"`.
    pub is_true: bool,
    /// The condition's `lastTransitionTime`.
    pub last_transition_time: Option<Timestamp>,
}

impl From<Pod> for PodProjection {
    fn from(pod: Pod) -> Self {
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
            .into_iter()
            .chain(sidecars)
            .flat_map(named_ports_of)
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

fn named_ports_of(container: Container) -> impl Iterator<Item = NamedPort> {
    container.ports.unwrap_or_default().into_iter().filter_map(|port| {
        let name = port.name.filter(|name| !name.is_empty())?;
        Some(NamedPort {
            name,
            protocol: port.protocol.unwrap_or_else(|| DEFAULT_PROTOCOL.to_owned()),
            container_port: port.container_port,
        })
    })
}

impl kube::Resource for PodProjection {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind((): &()) -> Cow<'_, str> {
        Cow::Borrowed("Pod")
    }

    fn group((): &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn version((): &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }

    fn plural((): &()) -> Cow<'_, str> {
        Cow::Borrowed("pods")
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// What a pod update means for the endpoints of the Services selecting it
/// (upstream's `podEndpointsChanged`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PodChange {
    /// The pod's endpoint may look different: its deletion timestamp, its
    /// readiness or its IPs changed.
    pub endpoint_changed: bool,
    /// The set of Services selecting the pod may differ: its labels, hostname
    /// or subdomain changed.
    pub labels_changed: bool,
}

impl PodProjection {
    /// The pod name (empty when unset).
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    /// The pod namespace (empty when unset).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or_default()
    }

    /// The pod labels (empty when unset).
    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }

    /// Whether the pod is in a terminal phase (`Failed` or `Succeeded`): its
    /// containers have stopped for good.
    pub fn is_terminal(&self) -> bool {
        matches!(self.phase.as_deref(), Some("Failed" | "Succeeded"))
    }

    /// Whether the pod is being deleted (has a `deletionTimestamp`).
    pub fn is_terminating(&self) -> bool {
        self.metadata.deletion_timestamp.is_some()
    }

    /// Whether the pod's `Ready` condition is `"True"` (upstream's
    /// `IsPodReady`; the phase is not looked at, a missing condition is not
    /// ready).
    pub fn is_ready(&self) -> bool {
        self.ready.as_ref().is_some_and(|c| c.is_true)
    }

    /// Whether the pod has any IP: `status.podIP` or `status.podIPs` set.
    pub fn has_ip(&self) -> bool {
        self.pod_ip.as_deref().is_some_and(|ip| !ip.is_empty()) || !self.pod_ips.is_empty()
    }

    /// Whether the pod belongs in a Service's endpoints at all (upstream's
    /// `ShouldPodBeInEndpoints`): not terminal, has an IP, and — unless
    /// `include_terminating` — is not being deleted.
    pub fn should_be_endpoint(&self, include_terminating: bool) -> bool {
        !self.is_terminal() && self.has_ip() && (include_terminating || !self.is_terminating())
    }

    /// The entries of `status.podIPs` of `family`, in order, as written in the
    /// pod status. Entries that are not usable IP addresses are skipped (see
    /// [`crate::ip::parse_ip`]).
    pub fn ips_of_family(&self, family: IpFamily) -> impl Iterator<Item = &str> {
        self.pod_ips
            .iter()
            .map(String::as_str)
            .filter(move |ip| IpFamily::of(ip) == Some(family))
    }

    /// Whether an endpoint of this pod for the Service `service_name` in
    /// `service_namespace` carries the pod's hostname (upstream's
    /// `ShouldSetHostname`): the pod has a hostname, its subdomain is the
    /// Service's name, and both live in the same namespace. Not limited to
    /// headless Services.
    pub fn should_set_hostname(&self, service_namespace: &str, service_name: &str) -> bool {
        self.hostname.as_deref().is_some_and(|h| !h.is_empty())
            && self.subdomain.as_deref().unwrap_or_default() == service_name
            && self.namespace() == service_namespace
    }

    /// The time this pod last changed in a way that moves endpoints: the
    /// `lastTransitionTime` of its `Ready` condition.
    pub fn trigger_time(&self) -> Option<Timestamp> {
        self.ready.as_ref().and_then(|c| c.last_transition_time)
    }

    /// Compares two versions of one pod the way upstream's
    /// `podEndpointsChanged` does.
    ///
    /// `endpoint_changed` is set when the deletion timestamp appears,
    /// disappears or is present on both versions (upstream compares the Go
    /// pointers, which differ for any two decoded objects), when readiness
    /// flips, or when `status.podIPs` differ in length or in any `ip`.
    /// Phase, node name and ports are deliberately not looked at.
    /// `labels_changed` is set when labels, hostname or subdomain differ.
    pub fn change_from(&self, old: &Self) -> PodChange {
        let labels_changed =
            self.labels() != old.labels() || self.hostname != old.hostname || self.subdomain != old.subdomain;
        let endpoint_changed = self.is_terminating()
            || old.is_terminating()
            || self.is_ready() != old.is_ready()
            || self.pod_ips != old.pod_ips;
        PodChange {
            endpoint_changed,
            labels_changed,
        }
    }
}

/// Formats a trigger time as upstream writes
/// [`crate::wellknown::ANNOTATION_LAST_CHANGE_TRIGGER_TIME`]: RFC 3339 in UTC
/// with as many fractional-second digits as needed and none when whole (Go's
/// `time.RFC3339Nano`).
///
/// ```
/// use ecm_types::pod::format_trigger_time;
/// let t: k8s_openapi::jiff::Timestamp = "2024-01-15T10:00:00.120Z".parse().unwrap();
/// assert_eq!(format_trigger_time(t), "2024-01-15T10:00:00.12Z");
/// ```
pub fn format_trigger_time(time: Timestamp) -> String {
    let civil = time.to_zoned(TimeZone::UTC).datetime();
    let whole = civil.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = civil.subsec_nanosecond();
    if nanos == 0 {
        format!("{whole}Z")
    } else {
        let fraction = format!("{nanos:09}");
        format!("{whole}.{}Z", fraction.trim_end_matches('0'))
    }
}

mod wire;

#[cfg(test)]
mod tests;
