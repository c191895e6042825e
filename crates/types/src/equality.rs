//! Semantic equality, as Kubernetes' `apiequality.Semantic.DeepEqual` sees
//! it, for the fields the controllers compare before deciding to write.
//!
//! Two rules of Go's semantic equality matter when the objects are
//! `k8s-openapi` structs, where every optional field is an `Option`:
//! - an absent list or map equals an empty one;
//! - a Go field that is a plain `string` (not a pointer) cannot tell absent
//!   from empty, so `None` equals `Some("")` there; pointer fields
//!   (`nodeName`, `appProtocol`, `zone`, conditions) do tell them apart.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, ObjectReference};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};

/// Equality of a Go plain `string` field: absent equals empty.
pub fn plain_str_eq(a: Option<&str>, b: Option<&str>) -> bool {
    a.unwrap_or_default() == b.unwrap_or_default()
}

/// Equality of two optional lists where absent equals empty.
pub fn list_eq<T, F>(a: Option<&[T]>, b: Option<&[T]>, eq: F) -> bool
where
    F: Fn(&T, &T) -> bool,
{
    let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| eq(x, y))
}

/// Equality of two optional string maps (labels, annotations) where absent
/// equals empty.
pub fn map_eq(a: Option<&BTreeMap<String, String>>, b: Option<&BTreeMap<String, String>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        (Some(m), None) | (None, Some(m)) => m.is_empty(),
        (None, None) => true,
    }
}

/// Equality of object references ignoring `resourceVersion` (upstream's
/// `semanticIgnoreResourceVersion`): a pod's new resourceVersion alone must
/// never cause an endpoints write. All fields are Go plain strings.
pub fn object_ref_eq_ignoring_rv(a: &ObjectReference, b: &ObjectReference) -> bool {
    plain_str_eq(a.kind.as_deref(), b.kind.as_deref())
        && plain_str_eq(a.namespace.as_deref(), b.namespace.as_deref())
        && plain_str_eq(a.name.as_deref(), b.name.as_deref())
        && plain_str_eq(a.uid.as_deref(), b.uid.as_deref())
        && plain_str_eq(a.api_version.as_deref(), b.api_version.as_deref())
        && plain_str_eq(a.field_path.as_deref(), b.field_path.as_deref())
}

fn opt_ref_eq(a: Option<&ObjectReference>, b: Option<&ObjectReference>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => object_ref_eq_ignoring_rv(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// Semantic equality of two Endpoints addresses, ignoring the target
/// reference's resourceVersion.
pub fn endpoint_address_eq(a: &EndpointAddress, b: &EndpointAddress) -> bool {
    a.ip == b.ip
        && plain_str_eq(a.hostname.as_deref(), b.hostname.as_deref())
        && a.node_name == b.node_name
        && opt_ref_eq(a.target_ref.as_ref(), b.target_ref.as_ref())
}

/// Semantic equality of two Endpoints ports.
pub fn endpoint_port_eq(a: &EndpointPort, b: &EndpointPort) -> bool {
    plain_str_eq(a.name.as_deref(), b.name.as_deref())
        && a.port == b.port
        && plain_str_eq(a.protocol.as_deref(), b.protocol.as_deref())
        && a.app_protocol == b.app_protocol
}

/// Semantic equality of two Endpoints subsets, in order, ignoring target
/// references' resourceVersions.
pub fn endpoint_subset_eq(a: &EndpointSubset, b: &EndpointSubset) -> bool {
    list_eq(a.addresses.as_deref(), b.addresses.as_deref(), endpoint_address_eq)
        && list_eq(
            a.not_ready_addresses.as_deref(),
            b.not_ready_addresses.as_deref(),
            endpoint_address_eq,
        )
        && list_eq(a.ports.as_deref(), b.ports.as_deref(), endpoint_port_eq)
}

/// Semantic equality of two lists of Endpoints subsets, in order (upstream's
/// `endpointSubsetsEqualIgnoreResourceVersion`).
pub fn endpoint_subsets_eq(a: Option<&[EndpointSubset]>, b: Option<&[EndpointSubset]>) -> bool {
    list_eq(a, b, endpoint_subset_eq)
}

/// Whether two EndpointSlice endpoints with the same identity (addresses,
/// hostname, target name) are equal in everything else the controllers write
/// (upstream's `EndpointsEqualBeyondHash`): node name, zone, the three
/// conditions (absent differs from false) and the target reference ignoring
/// its resourceVersion. Hints are not compared.
pub fn endpoints_equal_beyond_hash(a: &Endpoint, b: &Endpoint) -> bool {
    let condition = |e: &Endpoint, pick: fn(&EndpointConditions) -> Option<bool>| e.conditions.as_ref().and_then(pick);
    a.node_name == b.node_name
        && a.zone == b.zone
        && condition(a, |c| c.ready) == condition(b, |c| c.ready)
        && condition(a, |c| c.serving) == condition(b, |c| c.serving)
        && condition(a, |c| c.terminating) == condition(b, |c| c.terminating)
        && opt_ref_eq(a.target_ref.as_ref(), b.target_ref.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, rv: Option<&str>) -> ObjectReference {
        ObjectReference {
            kind: Some("Pod".into()),
            namespace: Some("ns".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            resource_version: rv.map(Into::into),
            ..ObjectReference::default()
        }
    }

    fn address(ip: &str, rv: Option<&str>) -> EndpointAddress {
        EndpointAddress {
            ip: ip.into(),
            node_name: Some("node-1".into()),
            target_ref: Some(target(ip, rv)),
            ..EndpointAddress::default()
        }
    }

    fn subset(addresses: Vec<EndpointAddress>) -> EndpointSubset {
        EndpointSubset {
            addresses: Some(addresses),
            ports: Some(vec![EndpointPort {
                name: Some("http".into()),
                port: 80,
                protocol: Some("TCP".into()),
                ..EndpointPort::default()
            }]),
            ..EndpointSubset::default()
        }
    }

    #[test]
    fn subsets_equal_ignoring_target_resource_version() {
        let a = [subset(vec![
            address("10.0.0.1", Some("1")),
            address("10.0.0.2", Some("7")),
        ])];
        let b = [subset(vec![address("10.0.0.1", Some("2")), address("10.0.0.2", None)])];
        assert!(endpoint_subsets_eq(Some(&a), Some(&b)));
    }

    #[test]
    fn subsets_differ_on_any_other_field() {
        let base = subset(vec![address("10.0.0.1", None)]);
        let mut ip = base.clone();
        ip.addresses.as_mut().unwrap()[0].ip = "10.0.0.9".into();
        let mut node = base.clone();
        node.addresses.as_mut().unwrap()[0].node_name = None;
        let mut uid = base.clone();
        uid.addresses.as_mut().unwrap()[0].target_ref.as_mut().unwrap().uid = Some("other".into());
        let mut app_protocol = base.clone();
        app_protocol.ports.as_mut().unwrap()[0].app_protocol = Some("http".into());
        let mut not_ready = base.clone();
        not_ready.not_ready_addresses = not_ready.addresses.take();
        for (name, changed) in [
            ("ip", ip),
            ("nodeName", node),
            ("uid", uid),
            ("appProtocol", app_protocol),
            ("readiness", not_ready),
        ] {
            assert!(
                !endpoint_subsets_eq(Some(std::slice::from_ref(&base)), Some(&[changed])),
                "{name}"
            );
        }
    }

    #[test]
    fn order_matters() {
        let a = subset(vec![address("10.0.0.1", None)]);
        let b = subset(vec![address("10.0.0.2", None)]);
        assert!(!endpoint_subsets_eq(Some(&[a.clone(), b.clone()]), Some(&[b, a])));
    }

    #[test]
    fn absent_equals_empty() {
        assert!(endpoint_subsets_eq(None, Some(&[])));
        let mut empty_lists = subset(vec![]);
        empty_lists.not_ready_addresses = Some(vec![]);
        let mut absent_lists = subset(vec![]);
        absent_lists.addresses = None;
        assert!(endpoint_subset_eq(&empty_lists, &absent_lists));
        let hostname_empty = EndpointAddress {
            hostname: Some(String::new()),
            ..address("10.0.0.1", None)
        };
        assert!(
            endpoint_address_eq(&hostname_empty, &address("10.0.0.1", None)),
            "hostname is a plain string"
        );
        assert!(map_eq(None, Some(&BTreeMap::new())));
        assert!(!map_eq(None, Some(&BTreeMap::from([("a".to_owned(), String::new())]))));
    }

    fn endpoint() -> Endpoint {
        Endpoint {
            addresses: vec!["10.0.0.1".into()],
            conditions: Some(EndpointConditions {
                ready: Some(true),
                serving: Some(true),
                terminating: Some(false),
            }),
            node_name: Some("node-1".into()),
            zone: Some("zone-a".into()),
            target_ref: Some(target("p", Some("1"))),
            ..Endpoint::default()
        }
    }

    #[test]
    fn endpoints_beyond_hash() {
        let base = endpoint();
        let mut rv_only = endpoint();
        rv_only.target_ref = Some(target("p", Some("99")));
        assert!(endpoints_equal_beyond_hash(&base, &rv_only));
        let mut hinted = endpoint();
        hinted.hints = Some(k8s_openapi::api::discovery::v1::EndpointHints::default());
        assert!(endpoints_equal_beyond_hash(&base, &hinted), "hints are not compared");

        let mut changes: Vec<(&str, Endpoint)> = Vec::new();
        let mut e = endpoint();
        e.node_name = None;
        changes.push(("nodeName", e));
        let mut e = endpoint();
        e.zone = Some("zone-b".into());
        changes.push(("zone", e));
        let mut e = endpoint();
        e.conditions.as_mut().unwrap().ready = Some(false);
        changes.push(("ready", e));
        let mut e = endpoint();
        e.conditions.as_mut().unwrap().serving = None;
        changes.push(("serving absent", e));
        let mut e = endpoint();
        e.conditions.as_mut().unwrap().terminating = Some(true);
        changes.push(("terminating", e));
        let mut e = endpoint();
        e.target_ref.as_mut().unwrap().uid = Some("new-uid".into());
        changes.push(("uid", e));
        for (name, changed) in changes {
            assert!(!endpoints_equal_beyond_hash(&base, &changed), "{name}");
        }
    }
}
