//! Endpoints objects compared address by address.

use std::collections::{BTreeMap, BTreeSet};

use ecm_types::wellknown::{ANNOTATION_OVER_CAPACITY, LABEL_HEADLESS};
use k8s_openapi::api::core::v1::Endpoints;

use super::difference::{Difference, map_difference, show};

/// What one IP carries across subsets.
#[derive(Default, PartialEq, Eq)]
struct Address {
    ready: BTreeSet<bool>,
    ports: BTreeSet<String>,
    hostname: Option<String>,
    node_name: Option<String>,
    target: Option<String>,
}

fn addresses(object: &Endpoints) -> BTreeMap<String, Address> {
    let mut map: BTreeMap<String, Address> = BTreeMap::new();
    for subset in object.subsets.iter().flatten() {
        let ports: Vec<String> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}:{}/{}",
                    p.name.as_deref().unwrap_or_default(),
                    p.port,
                    p.protocol.as_deref().unwrap_or("TCP")
                )
            })
            .collect();
        let lists = [(true, &subset.addresses), (false, &subset.not_ready_addresses)];
        for (ready, list) in lists {
            for address in list.iter().flatten() {
                let entry = map.entry(address.ip.clone()).or_default();
                entry.ready.insert(ready);
                entry.ports.extend(ports.iter().cloned());
                entry.hostname.clone_from(&address.hostname);
                entry.node_name = address.node_name.clone().filter(|n| !n.is_empty());
                entry.target = address.target_ref.as_ref().map(|t| {
                    format!(
                        "{}/{}/{}",
                        t.kind.as_deref().unwrap_or_default(),
                        t.namespace.as_deref().unwrap_or_default(),
                        t.name.as_deref().unwrap_or_default()
                    )
                });
            }
        }
    }
    map
}

fn list<T: std::fmt::Display>(set: &BTreeSet<T>) -> String {
    format!(
        "[{}]",
        set.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")
    )
}

/// Compares the Endpoints object the controller would write with the one
/// that exists: presence, every address with its readiness, ports,
/// hostname, nodeName and targetRef (subset packing ignored), the labels
/// (the headless label aside, which the controller never corrects alone)
/// and the over-capacity annotation.
pub fn compare_endpoints(desired: Option<&Endpoints>, actual: Option<&Endpoints>) -> Vec<Difference> {
    let (desired, actual) = match (desired, actual) {
        (None, None) => return Vec::new(),
        (Some(_), None) | (None, Some(_)) => {
            let state = |present: bool| if present { "present" } else { "absent" }.to_owned();
            return vec![Difference {
                field: "object",
                subject: "Endpoints".to_owned(),
                desired: state(desired.is_some()),
                actual: state(actual.is_some()),
            }];
        }
        (Some(d), Some(a)) => (d, a),
    };
    let mut differences = Vec::new();
    let (want, have) = (addresses(desired), addresses(actual));
    let ips: BTreeSet<&String> = want.keys().chain(have.keys()).collect();
    for ip in ips {
        let Some(target) = want.get(ip).or_else(|| have.get(ip)) else {
            continue;
        };
        let subject = match target.target.as_deref().and_then(|t| t.rsplit('/').next()) {
            Some(pod) => format!("Endpoints address {ip} (pod {pod})"),
            None => format!("Endpoints address {ip}"),
        };
        let (Some(w), Some(h)) = (want.get(ip), have.get(ip)) else {
            let present = want.contains_key(ip);
            differences.push(Difference {
                field: "addresses",
                subject,
                desired: if present { "present" } else { "absent" }.to_owned(),
                actual: if present { "missing" } else { "present" }.to_owned(),
            });
            continue;
        };
        let pairs = [
            ("conditions.ready", list(&w.ready), list(&h.ready)),
            ("ports", list(&w.ports), list(&h.ports)),
            ("hostname", show(w.hostname.as_ref()), show(h.hostname.as_ref())),
            ("nodeName", show(w.node_name.as_ref()), show(h.node_name.as_ref())),
            ("targetRef", show(w.target.as_ref()), show(h.target.as_ref())),
        ];
        for (field, desired, actual) in pairs {
            if desired != actual {
                differences.push(Difference {
                    field,
                    subject: subject.clone(),
                    desired,
                    actual,
                });
            }
        }
    }
    if let Some((d, a)) = map_difference(
        desired.metadata.labels.as_ref(),
        actual.metadata.labels.as_ref(),
        &[LABEL_HEADLESS],
    ) {
        differences.push(Difference {
            field: "labels",
            subject: "Endpoints".to_owned(),
            desired: d,
            actual: a,
        });
    }
    let capacity = |e: &Endpoints| {
        e.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_OVER_CAPACITY).cloned())
    };
    if capacity(desired) != capacity(actual) {
        differences.push(Difference {
            field: "annotations",
            subject: "Endpoints".to_owned(),
            desired: format!("{ANNOTATION_OVER_CAPACITY}={}", show(capacity(desired))),
            actual: format!("{ANNOTATION_OVER_CAPACITY}={}", show(capacity(actual))),
        });
    }
    differences
}
