//! An independent oracle: what every Service's Endpoints and EndpointSlices
//! must hold, computed from the pods, Services and nodes alone with the
//! plain rules of the Kubernetes documentation (none of ecm's planning
//! code), and the list of what differs.
//!
//! Rules (upstream `ShouldPodBeInEndpoints`, `podToEndpoint`, `FindPort`):
//! - a pod belongs to a Service when it is in its namespace, carries every
//!   label of its selector, is not Succeeded or Failed and has an IP;
//! - EndpointSlices list it even while it terminates (`ready` = Ready and
//!   not terminating, `serving` = Ready, `terminating` = being deleted);
//!   Endpoints leave terminating pods out and put pods that are not Ready
//!   under `notReadyAddresses`;
//! - a Service port resolves on a pod to its numeric `targetPort`, or to
//!   the number of the pod's container port of that name and protocol; a
//!   port that does not resolve is left out for that pod (Endpoints leave
//!   out a pod none of whose ports resolve);
//! - a Service with no endpoint keeps one empty placeholder slice, and no
//!   other slice is ever empty; no slice holds more than the maximum;
//! - every managed slice names an existing Service and is owned by its
//!   current incarnation (uid); every Endpoints object has its Service.
//!
//! Node zones: upstream does not sync a Service again when a node is
//! relabelled, so an endpoint keeps the zone its node had when its pod was
//! last synced: the oracle accepts any zone the node has had.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

/// The label naming a managed slice's Service.
const SERVICE_NAME: &str = "kubernetes.io/service-name";
/// The label naming a slice's manager.
const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// The EndpointSlice controller's manager name.
const SLICE_CONTROLLER: &str = "endpointslice-controller.k8s.io";

/// Kinds of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    /// An endpoint that should be listed is not.
    Lost,
    /// An endpoint is listed that should not be (gone, moved, terminating in Endpoints).
    Stale,
    /// One address listed twice for one Service.
    Duplicate,
    /// Listed with wrong conditions, ports, node, zone or pod.
    Wrong,
    /// A slice over the maximum size.
    Oversize,
    /// An object without its Service (or of an older incarnation), or a
    /// missing Endpoints object / slice.
    Orphan,
}

impl Kind {
    /// Every kind, in report order.
    pub(crate) const ALL: [Kind; 6] = [
        Kind::Lost,
        Kind::Stale,
        Kind::Duplicate,
        Kind::Wrong,
        Kind::Oversize,
        Kind::Orphan,
    ];
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// Its kind.
    pub(crate) kind: Kind,
    /// What, where.
    pub(crate) detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)
    }
}

/// A port as listed: name, number, protocol.
type Port = (String, i64, String);

/// What one endpoint should look like.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    pod: String,
    node: String,
    ready: bool,
    serving: bool,
    terminating: bool,
    ports: BTreeSet<Port>,
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn selects(service: &Value, pod: &Value) -> bool {
    let Some(selector) = service.pointer("/spec/selector").and_then(Value::as_object) else {
        return false;
    };
    str_at(service, "/metadata/namespace") == str_at(pod, "/metadata/namespace")
        && !selector.is_empty()
        && selector.iter().all(|(k, v)| label(pod, k) == v.as_str())
}

/// The number a Service port targets on `pod`, if it resolves.
fn resolve(port: &Value, pod: &Value) -> Option<i64> {
    let protocol = port["protocol"].as_str().unwrap_or("TCP");
    match &port["targetPort"] {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)?
            .iter()
            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
            .find(|p| p["name"] == name.as_str() && p["protocol"].as_str().unwrap_or("TCP") == protocol)
            .and_then(|p| p["containerPort"].as_i64()),
        _ => port["port"].as_i64(),
    }
}

/// Expected endpoints of `service` by IP, slices' view (terminating pods included).
fn expected(service: &Value, pods: &[Value]) -> BTreeMap<String, Endpoint> {
    let ports = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    pods.iter()
        .filter(|pod| selects(service, pod))
        .filter(|pod| !matches!(str_at(pod, "/status/phase"), "Succeeded" | "Failed"))
        .filter(|pod| !str_at(pod, "/status/podIP").is_empty())
        .map(|pod| {
            let ready = pod_ready(pod);
            let terminating = pod.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null());
            let ports = ports
                .iter()
                .filter_map(|p| {
                    let number = resolve(p, pod)?;
                    Some((
                        p["name"].as_str().unwrap_or("").to_owned(),
                        number,
                        p["protocol"].as_str().unwrap_or("TCP").to_owned(),
                    ))
                })
                .collect();
            (
                str_at(pod, "/status/podIP").to_owned(),
                Endpoint {
                    pod: str_at(pod, "/metadata/name").to_owned(),
                    node: str_at(pod, "/spec/nodeName").to_owned(),
                    ready: ready && !terminating,
                    serving: ready,
                    terminating,
                    ports,
                },
            )
        })
        .collect()
}

fn ports_of(list: &Value) -> BTreeSet<Port> {
    list.as_array()
        .map(|ports| {
            ports
                .iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap_or("").to_owned(),
                        p["port"].as_i64().unwrap_or(-1),
                        p["protocol"].as_str().unwrap_or("TCP").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The state the oracle reads.
pub(crate) struct Cluster<'a> {
    /// All Services.
    pub(crate) services: &'a [Value],
    /// All pods.
    pub(crate) pods: &'a [Value],
    /// All Endpoints objects.
    pub(crate) endpoints: &'a [Value],
    /// All EndpointSlices.
    pub(crate) slices: &'a [Value],
    /// Zones each node has had (the current one included).
    pub(crate) zones: &'a BTreeMap<String, BTreeSet<String>>,
    /// `--max-endpoints-per-slice`.
    pub(crate) max_per_slice: usize,
}

/// Everything that differs from what the pods imply.
pub(crate) fn check(cluster: &Cluster<'_>) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut report = |kind: Kind, detail: String| problems.push(Problem { kind, detail });
    let services: BTreeMap<&str, &Value> = cluster
        .services
        .iter()
        .map(|s| (str_at(s, "/metadata/name"), s))
        .collect();

    for slice in cluster.slices {
        let name = str_at(slice, "/metadata/name");
        if label(slice, MANAGED_BY) != Some(SLICE_CONTROLLER) {
            report(
                Kind::Orphan,
                format!("slice {name} is not managed by the EndpointSlice controller"),
            );
            continue;
        }
        let owner = label(slice, SERVICE_NAME).unwrap_or("");
        match services.get(owner) {
            None => report(Kind::Orphan, format!("slice {name} of deleted Service {owner:?}")),
            Some(service) => {
                let uid = str_at(service, "/metadata/uid");
                let owned = slice
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid && r["controller"] == true));
                if !owned {
                    report(
                        Kind::Orphan,
                        format!("slice {name} is not owned by Service {owner} (uid {uid})"),
                    );
                }
            }
        }
        let size = slice["endpoints"].as_array().map_or(0, Vec::len);
        if size > cluster.max_per_slice {
            report(Kind::Oversize, format!("slice {name} holds {size} endpoints"));
        }
        if slice["addressType"] != "IPv4" {
            report(
                Kind::Wrong,
                format!("slice {name} has addressType {}", slice["addressType"]),
            );
        }
    }
    for endpoints in cluster.endpoints {
        let name = str_at(endpoints, "/metadata/name");
        if !services.contains_key(name) {
            report(Kind::Orphan, format!("Endpoints {name} without a Service"));
        }
    }

    for (name, service) in &services {
        if service
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .is_none_or(serde_json::Map::is_empty)
        {
            continue; // mirrored from its Endpoints: not in this oracle's scope
        }
        let want = expected(service, cluster.pods);
        check_slices(name, service, &want, cluster, &mut report);
        check_endpoints(name, &want, cluster, &mut report);
    }
    problems
}

fn check_slices(
    name: &str,
    service: &Value,
    want: &BTreeMap<String, Endpoint>,
    cluster: &Cluster<'_>,
    report: &mut impl FnMut(Kind, String),
) {
    let uid = str_at(service, "/metadata/uid");
    let slices: Vec<&Value> = cluster
        .slices
        .iter()
        .filter(|s| label(s, SERVICE_NAME) == Some(name) && label(s, MANAGED_BY) == Some(SLICE_CONTROLLER))
        .filter(|s| {
            s.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
        })
        .collect();
    let empty = slices
        .iter()
        .filter(|s| s["endpoints"].as_array().is_none_or(Vec::is_empty))
        .count();
    if want.is_empty() {
        if slices.len() != 1 || empty != 1 {
            report(
                Kind::Orphan,
                format!(
                    "Service {name} has no endpoint: {} slices, {empty} empty, want 1 placeholder",
                    slices.len()
                ),
            );
        }
    } else if slices.is_empty() {
        report(Kind::Orphan, format!("Service {name} has no slice"));
    } else if empty > 0 {
        report(
            Kind::Stale,
            format!("Service {name} keeps {empty} empty slices beside its endpoints"),
        );
    }
    let mut seen = BTreeSet::new();
    for slice in slices {
        let ports = ports_of(&slice["ports"]);
        for endpoint in slice["endpoints"].as_array().into_iter().flatten() {
            let ip = str_at(endpoint, "/addresses/0");
            if !seen.insert(ip.to_owned()) {
                report(Kind::Duplicate, format!("{ip} listed twice in the slices of {name}"));
                continue;
            }
            let Some(e) = want.get(ip) else {
                report(
                    Kind::Stale,
                    format!(
                        "{ip} ({}) in slice {} of {name}",
                        str_at(endpoint, "/targetRef/name"),
                        str_at(slice, "/metadata/name")
                    ),
                );
                continue;
            };
            let condition = |c: &str| endpoint.pointer(&format!("/conditions/{c}")).and_then(Value::as_bool);
            let got = (condition("ready"), condition("serving"), condition("terminating"));
            if got != (Some(e.ready), Some(e.serving), Some(e.terminating)) {
                report(
                    Kind::Wrong,
                    format!(
                        "{ip} of {name}: conditions {got:?}, want ready {} serving {} terminating {}",
                        e.ready, e.serving, e.terminating
                    ),
                );
            }
            if ports != e.ports {
                report(
                    Kind::Wrong,
                    format!("{ip} of {name}: slice ports {ports:?}, want {:?}", e.ports),
                );
            }
            if str_at(endpoint, "/targetRef/name") != e.pod || str_at(endpoint, "/nodeName") != e.node {
                report(
                    Kind::Wrong,
                    format!(
                        "{ip} of {name}: pod {} on {}, want {} on {}",
                        str_at(endpoint, "/targetRef/name"),
                        str_at(endpoint, "/nodeName"),
                        e.pod,
                        e.node
                    ),
                );
            }
            let zone = str_at(endpoint, "/zone");
            if !cluster.zones.get(&e.node).is_some_and(|zones| zones.contains(zone)) {
                report(
                    Kind::Wrong,
                    format!("{ip} of {name}: zone {zone:?}, never the zone of {}", e.node),
                );
            }
        }
    }
    for ip in want.keys().filter(|ip| !seen.contains(*ip)) {
        report(
            Kind::Lost,
            format!("{ip} ({}) missing from the slices of {name}", want[ip].pod),
        );
    }
}

fn check_endpoints(
    name: &str,
    want: &BTreeMap<String, Endpoint>,
    cluster: &Cluster<'_>,
    report: &mut impl FnMut(Kind, String),
) {
    let Some(endpoints) = cluster.endpoints.iter().find(|e| str_at(e, "/metadata/name") == name) else {
        report(Kind::Orphan, format!("Service {name} has no Endpoints object"));
        return;
    };
    // Endpoints: no terminating pod, no pod without a resolved port.
    let want: BTreeMap<&String, &Endpoint> = want
        .iter()
        .filter(|(_, e)| !e.terminating && !e.ports.is_empty())
        .collect();
    // Subsets group addresses by port (upstream `RepackSubsets`): one
    // address may appear in several subsets, each port of it once.
    let mut got: BTreeMap<String, (BTreeSet<bool>, BTreeSet<Port>, BTreeSet<(String, String)>)> = BTreeMap::new();
    for subset in endpoints["subsets"].as_array().into_iter().flatten() {
        let ports = ports_of(&subset["ports"]);
        for (list, ready) in [("addresses", true), ("notReadyAddresses", false)] {
            for address in subset[list].as_array().into_iter().flatten() {
                let ip = str_at(address, "/ip");
                let entry = got.entry(ip.to_owned()).or_default();
                entry.0.insert(ready);
                for port in &ports {
                    if !entry.1.insert(port.clone()) {
                        report(
                            Kind::Duplicate,
                            format!("{ip} port {port:?} listed twice in Endpoints {name}"),
                        );
                    }
                }
                entry.2.insert((
                    str_at(address, "/targetRef/name").to_owned(),
                    str_at(address, "/nodeName").to_owned(),
                ));
            }
        }
    }
    let mut seen = BTreeSet::new();
    for (ip, (ready, ports, pods)) in &got {
        seen.insert(ip.clone());
        let Some(e) = want.get(ip) else {
            report(Kind::Stale, format!("{ip} ({pods:?}) in Endpoints {name}"));
            continue;
        };
        if ready.len() > 1 {
            report(
                Kind::Duplicate,
                format!("{ip} both ready and not ready in Endpoints {name}"),
            );
        } else if ready.first() != Some(&e.ready) || *ports != e.ports {
            report(
                Kind::Wrong,
                format!(
                    "{ip} in Endpoints {name}: ready {ready:?} ports {ports:?}, want ready {} ports {:?}",
                    e.ready, e.ports
                ),
            );
        }
        if pods.len() != 1 || pods.first() != Some(&(e.pod.clone(), e.node.clone())) {
            report(
                Kind::Wrong,
                format!("{ip} in Endpoints {name}: pods {pods:?}, want {} on {}", e.pod, e.node),
            );
        }
    }
    for ip in want.keys().filter(|ip| !seen.contains(ip.as_str())) {
        report(
            Kind::Lost,
            format!("{ip} ({}) missing from Endpoints {name}", want[ip].pod),
        );
    }
}
