//! EndpointSlices of one Service (or mirrored Endpoints), compared per
//! address type as sets of endpoints with their ports.

use std::collections::{BTreeMap, BTreeSet};

use ecm_types::endpoint_slice::{endpoints, ports};
use ecm_types::wellknown::ANNOTATION_LAST_CHANGE_TRIGGER_TIME;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};

use super::difference::{Difference, map_difference, show};

/// An endpoint's identity: its addresses, sorted.
fn identity(endpoint: &Endpoint) -> String {
    let mut addresses = endpoint.addresses.clone();
    addresses.sort();
    addresses.join(",")
}

/// The slice's ports, order-free, as text.
fn ports_text(slice: &EndpointSlice) -> String {
    let mut list: Vec<String> = ports(slice)
        .iter()
        .map(|p| {
            let app = p.app_protocol.as_deref().map(|a| format!("({a})")).unwrap_or_default();
            format!(
                "{}:{}/{}{app}",
                p.name.as_deref().unwrap_or_default(),
                show(p.port),
                p.protocol.as_deref().unwrap_or("TCP")
            )
        })
        .collect();
    list.sort();
    format!("[{}]", list.join(" "))
}

fn hints_text(endpoint: &Endpoint) -> Option<String> {
    let hints = endpoint.hints.as_ref()?;
    let mut parts = Vec::new();
    if let Some(zones) = &hints.for_zones {
        parts.push(format!(
            "zones={}",
            zones.iter().map(|z| z.name.as_str()).collect::<Vec<_>>().join(",")
        ));
    }
    if let Some(nodes) = &hints.for_nodes {
        parts.push(format!(
            "nodes={}",
            nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(",")
        ));
    }
    Some(parts.join(" "))
}

fn target_text(endpoint: &Endpoint) -> Option<String> {
    let target = endpoint.target_ref.as_ref()?;
    Some(format!(
        "{}/{}/{}",
        target.kind.as_deref().unwrap_or_default(),
        target.namespace.as_deref().unwrap_or_default(),
        target.name.as_deref().unwrap_or_default()
    ))
}

/// The meaningful fields of an endpoint, by field name.
fn fields(endpoint: &Endpoint, slice: &EndpointSlice) -> [(&'static str, String); 9] {
    let conditions = endpoint.conditions.clone().unwrap_or_default();
    [
        ("conditions.ready", show(conditions.ready)),
        ("conditions.serving", show(conditions.serving)),
        ("conditions.terminating", show(conditions.terminating)),
        ("hostname", show(endpoint.hostname.as_ref())),
        ("nodeName", show(endpoint.node_name.as_ref())),
        ("zone", show(endpoint.zone.as_ref())),
        ("hints", show(hints_text(endpoint))),
        ("targetRef", show(target_text(endpoint))),
        ("ports", ports_text(slice)),
    ]
}

fn subject(address_type: &str, endpoint: &Endpoint) -> String {
    let pod = endpoint
        .target_ref
        .as_ref()
        .and_then(|t| t.name.as_deref())
        .map(|name| format!(" (pod {name})"))
        .unwrap_or_default();
    format!("{address_type} endpoint {}{pod}", identity(endpoint))
}

/// Compares the `desired` slices of one owner with the `actual` ones.
///
/// Per address type: whether slices exist at all; every endpoint (by its
/// addresses) present once, with the same conditions, hostname, nodeName,
/// zone, hints, targetRef and ports; the labels and annotations of every
/// slice (trigger time aside). Names and packing are ignored, as are empty
/// slices beside populated ones.
pub fn compare_slices(desired: &[EndpointSlice], actual: &[&EndpointSlice]) -> Vec<Difference> {
    let mut by_type: BTreeMap<&str, (Vec<&EndpointSlice>, Vec<&EndpointSlice>)> = BTreeMap::new();
    for slice in desired {
        by_type.entry(slice.address_type.as_str()).or_default().0.push(slice);
    }
    for slice in actual {
        by_type.entry(slice.address_type.as_str()).or_default().1.push(slice);
    }
    let mut differences = Vec::new();
    for (address_type, (want, have)) in by_type {
        compare_address_type(address_type, &want, &have, &mut differences);
    }
    differences
}

fn compare_address_type(
    address_type: &str,
    want: &[&EndpointSlice],
    have: &[&EndpointSlice],
    differences: &mut Vec<Difference>,
) {
    let names = |slices: &[&EndpointSlice]| {
        slices
            .iter()
            .map(|s| s.metadata.name.clone().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(",")
    };
    if want.is_empty() || have.is_empty() {
        differences.push(Difference {
            field: "object",
            subject: format!("{address_type} slices"),
            desired: if want.is_empty() {
                "none".to_owned()
            } else {
                format!("{} slice(s)", want.len())
            },
            actual: if have.is_empty() {
                "none".to_owned()
            } else {
                format!("{} slice(s): {}", have.len(), names(have))
            },
        });
        return;
    }
    let index = |slices: &[&EndpointSlice]| {
        let mut map: BTreeMap<String, Vec<(Endpoint, EndpointSlice)>> = BTreeMap::new();
        for slice in slices {
            for endpoint in endpoints(slice) {
                map.entry(identity(endpoint))
                    .or_default()
                    .push((endpoint.clone(), (*slice).clone()));
            }
        }
        map
    };
    let (wanted, found) = (index(want), index(have));
    let ids: BTreeSet<&String> = wanted.keys().chain(found.keys()).collect();
    for id in ids {
        match (wanted.get(id).and_then(|w| w.first()), found.get(id)) {
            (Some((endpoint, _)), None) => differences.push(Difference {
                field: "endpoints",
                subject: subject(address_type, endpoint),
                desired: "present".to_owned(),
                actual: "missing".to_owned(),
            }),
            (None, Some(list)) => differences.push(Difference {
                field: "endpoints",
                subject: subject(address_type, &list[0].0),
                desired: "absent".to_owned(),
                actual: format!("in slice {}", list[0].1.metadata.name.as_deref().unwrap_or_default()),
            }),
            (Some((endpoint, slice)), Some(list)) => {
                if list.len() > 1 {
                    differences.push(Difference {
                        field: "endpoints",
                        subject: subject(address_type, endpoint),
                        desired: "in 1 slice".to_owned(),
                        actual: format!("in {} slices", list.len()),
                    });
                }
                let (other, other_slice) = &list[0];
                for ((field, want), (_, have)) in fields(endpoint, slice).into_iter().zip(fields(other, other_slice)) {
                    if want != have {
                        differences.push(Difference {
                            field,
                            subject: subject(address_type, endpoint),
                            desired: want,
                            actual: have,
                        });
                    }
                }
            }
            (None, None) => {}
        }
    }
    let (labels, annotations) = (&want[0].metadata.labels, &want[0].metadata.annotations);
    for slice in have {
        let name = slice.metadata.name.as_deref().unwrap_or_default();
        if let Some((desired, actual)) = map_difference(labels.as_ref(), slice.metadata.labels.as_ref(), &[]) {
            differences.push(Difference {
                field: "labels",
                subject: format!("{address_type} slice {name}"),
                desired,
                actual,
            });
        }
        let ignored = [ANNOTATION_LAST_CHANGE_TRIGGER_TIME];
        if let Some((desired, actual)) =
            map_difference(annotations.as_ref(), slice.metadata.annotations.as_ref(), &ignored)
        {
            differences.push(Difference {
                field: "annotations",
                subject: format!("{address_type} slice {name}"),
                desired,
                actual,
            });
        }
    }
}
