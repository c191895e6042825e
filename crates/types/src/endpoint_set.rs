//! Endpoint identity and sets of EndpointSlice endpoints keyed by it
//! (upstream's `EndpointSet` and `hashEndpoint`).
//!
//! The EndpointSlice and mirroring controllers match the endpoints they want
//! against the endpoints already stored by *identity*: the sorted addresses,
//! the hostname and the target's namespace and name. Everything else
//! (conditions, node, zone, target uid) may change in place without the
//! endpoint becoming a different one; [`crate::equality::endpoints_equal_beyond_hash`]
//! tells whether such a change happened.

use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::collections::btree_map;

use k8s_openapi::api::discovery::v1::Endpoint;

/// What makes two EndpointSlice endpoints the same endpoint.
///
/// Two pods sharing an IP (host-network pods on one node) are two
/// identities, because their names differ. Absent hostname and target fields
/// count as empty strings, as in upstream's hash.
///
/// The ordering (addresses, then hostname, namespace, name) is what makes
/// [`EndpointSet`] iterate, and pop, deterministically.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointIdentity {
    addresses: Vec<String>,
    hostname: String,
    namespace: String,
    name: String,
}

impl EndpointIdentity {
    /// The identity of `endpoint`.
    pub fn of(endpoint: &Endpoint) -> Self {
        let mut addresses = endpoint.addresses.clone();
        addresses.sort();
        let target = endpoint.target_ref.as_ref();
        Self {
            addresses,
            hostname: endpoint.hostname.clone().unwrap_or_default(),
            namespace: target.and_then(|t| t.namespace.clone()).unwrap_or_default(),
            name: target.and_then(|t| t.name.clone()).unwrap_or_default(),
        }
    }
}

/// The fields of an identity, owned ([`EndpointIdentity`]) or borrowed from
/// an endpoint ([`Probe`]), compared in the same order as
/// `EndpointIdentity`'s derived `Ord`. Lets [`EndpointSet`] look endpoints up
/// without copying their strings.
trait IdentityKey {
    fn parts(&self) -> (&[String], &str, &str, &str);
}

impl IdentityKey for EndpointIdentity {
    fn parts(&self) -> (&[String], &str, &str, &str) {
        (&self.addresses, &self.hostname, &self.namespace, &self.name)
    }
}

/// The identity of an endpoint, borrowed from it (addresses are copied only
/// when there are several, to sort them).
struct Probe<'a> {
    addresses: Cow<'a, [String]>,
    hostname: &'a str,
    namespace: &'a str,
    name: &'a str,
}

impl<'a> Probe<'a> {
    fn of(endpoint: &'a Endpoint) -> Self {
        let addresses = if endpoint.addresses.is_sorted() {
            Cow::Borrowed(endpoint.addresses.as_slice())
        } else {
            let mut sorted = endpoint.addresses.clone();
            sorted.sort();
            Cow::Owned(sorted)
        };
        let target = endpoint.target_ref.as_ref();
        Self {
            addresses,
            hostname: endpoint.hostname.as_deref().unwrap_or_default(),
            namespace: target.and_then(|t| t.namespace.as_deref()).unwrap_or_default(),
            name: target.and_then(|t| t.name.as_deref()).unwrap_or_default(),
        }
    }
}

impl IdentityKey for Probe<'_> {
    fn parts(&self) -> (&[String], &str, &str, &str) {
        (&self.addresses, self.hostname, self.namespace, self.name)
    }
}

impl<'a> Borrow<dyn IdentityKey + 'a> for EndpointIdentity {
    fn borrow(&self) -> &(dyn IdentityKey + 'a) {
        self
    }
}

impl PartialEq for dyn IdentityKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn IdentityKey + '_ {}

impl PartialOrd for dyn IdentityKey + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn IdentityKey + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

/// A set of endpoints keyed by [`EndpointIdentity`]: at most one endpoint per
/// identity.
///
/// Unlike upstream's map-backed set, iteration and [`pop_first`](Self::pop_first)
/// follow identity order, so code that distributes endpoints over slices does
/// the same thing on every run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EndpointSet {
    items: BTreeMap<EndpointIdentity, Endpoint>,
}

impl EndpointSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `endpoint`, replacing any endpoint of the same identity.
    pub fn insert(&mut self, endpoint: Endpoint) {
        self.items.insert(EndpointIdentity::of(&endpoint), endpoint);
    }

    /// The endpoint of the same identity as `endpoint`, if any.
    pub fn get(&self, endpoint: &Endpoint) -> Option<&Endpoint> {
        self.items.get(&Probe::of(endpoint) as &dyn IdentityKey)
    }

    /// Whether an endpoint of the same identity as `endpoint` is in the set.
    pub fn contains(&self, endpoint: &Endpoint) -> bool {
        self.items.contains_key(&Probe::of(endpoint) as &dyn IdentityKey)
    }

    /// Removes and returns the endpoint of the same identity as `endpoint`.
    pub fn remove(&mut self, endpoint: &Endpoint) -> Option<Endpoint> {
        self.items.remove(&Probe::of(endpoint) as &dyn IdentityKey)
    }

    /// Removes and returns the endpoint with the smallest identity
    /// (upstream's `PopAny`, made deterministic).
    pub fn pop_first(&mut self) -> Option<Endpoint> {
        self.items.pop_first().map(|(_, endpoint)| endpoint)
    }

    /// The number of endpoints.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The endpoints in identity order.
    pub fn iter(&self) -> impl Iterator<Item = &Endpoint> {
        self.items.values()
    }
}

impl FromIterator<Endpoint> for EndpointSet {
    fn from_iter<I: IntoIterator<Item = Endpoint>>(iter: I) -> Self {
        let mut set = Self::new();
        for endpoint in iter {
            set.insert(endpoint);
        }
        set
    }
}

impl IntoIterator for EndpointSet {
    type Item = Endpoint;
    type IntoIter = btree_map::IntoValues<EndpointIdentity, Endpoint>;

    /// The endpoints in identity order.
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::api::discovery::v1::EndpointConditions;

    fn endpoint(addresses: &[&str], hostname: Option<&str>, pod: Option<(&str, &str)>) -> Endpoint {
        Endpoint {
            addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
            hostname: hostname.map(str::to_owned),
            target_ref: pod.map(|(namespace, name)| ObjectReference {
                kind: Some("Pod".to_owned()),
                namespace: Some(namespace.to_owned()),
                name: Some(name.to_owned()),
                ..ObjectReference::default()
            }),
            ..Endpoint::default()
        }
    }

    #[test]
    fn identity_ignores_address_order_conditions_node_and_uid() {
        let a = endpoint(&["10.0.0.1", "10.0.0.2"], Some("h"), Some(("ns", "p")));
        let mut b = endpoint(&["10.0.0.2", "10.0.0.1"], Some("h"), Some(("ns", "p")));
        b.conditions = Some(EndpointConditions {
            ready: Some(false),
            ..EndpointConditions::default()
        });
        b.node_name = Some("node-9".to_owned());
        if let Some(target) = b.target_ref.as_mut() {
            target.uid = Some("another-uid".to_owned());
        }
        assert_eq!(EndpointIdentity::of(&a), EndpointIdentity::of(&b));
    }

    #[test]
    fn identity_tells_apart_addresses_hostname_namespace_and_name() {
        let base = endpoint(&["10.0.0.1"], Some("h"), Some(("ns", "p")));
        let others = [
            ("address", endpoint(&["10.0.0.9"], Some("h"), Some(("ns", "p")))),
            ("hostname", endpoint(&["10.0.0.1"], Some("other"), Some(("ns", "p")))),
            ("namespace", endpoint(&["10.0.0.1"], Some("h"), Some(("other", "p")))),
            ("pod name", endpoint(&["10.0.0.1"], Some("h"), Some(("ns", "q")))),
        ];
        for (what, other) in others {
            assert_ne!(EndpointIdentity::of(&base), EndpointIdentity::of(&other), "{what}");
        }
    }

    #[test]
    fn absent_hostname_and_target_count_as_empty() {
        assert_eq!(
            EndpointIdentity::of(&endpoint(&["10.0.0.1"], None, None)),
            EndpointIdentity::of(&endpoint(&["10.0.0.1"], Some(""), Some(("", ""))))
        );
    }

    #[test]
    fn two_pods_sharing_an_ip_are_two_endpoints() {
        let set: EndpointSet = [
            endpoint(&["10.0.0.1"], None, Some(("ns", "a"))),
            endpoint(&["10.0.0.1"], None, Some(("ns", "b"))),
        ]
        .into_iter()
        .collect();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn insert_replaces_and_get_remove_match_by_identity() {
        let mut set = EndpointSet::new();
        set.insert(endpoint(&["10.0.0.1"], None, Some(("ns", "a"))));
        let mut newer = endpoint(&["10.0.0.1"], None, Some(("ns", "a")));
        newer.zone = Some("zone-a".to_owned());
        set.insert(newer);
        assert_eq!(set.len(), 1);

        let probe = endpoint(&["10.0.0.1"], None, Some(("ns", "a")));
        assert!(set.contains(&probe));
        assert_eq!(set.get(&probe).and_then(|e| e.zone.as_deref()), Some("zone-a"));
        assert!(set.remove(&probe).is_some());
        assert!(set.remove(&probe).is_none());
        assert!(set.is_empty());
    }

    #[test]
    fn pop_first_and_iteration_follow_identity_order() {
        let mut set: EndpointSet = ["10.0.0.3", "10.0.0.1", "10.0.0.2"]
            .into_iter()
            .map(|ip| endpoint(&[ip], None, None))
            .collect();
        let listed: Vec<_> = set.iter().map(|e| e.addresses[0].clone()).collect();
        assert_eq!(listed, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        assert_eq!(set.pop_first().unwrap().addresses, ["10.0.0.1"]);
        let rest: Vec<_> = set.into_iter().map(|e| e.addresses[0].clone()).collect();
        assert_eq!(rest, ["10.0.0.2", "10.0.0.3"]);
    }

    #[test]
    fn borrowed_lookups_agree_with_owned_identities() {
        let endpoints = [
            endpoint(&["10.0.0.2", "10.0.0.1"], Some("h"), Some(("ns", "p"))),
            endpoint(&["10.0.0.1", "10.0.0.2"], Some("h"), Some(("ns", "p"))),
            endpoint(&["10.0.0.1"], None, Some(("ns", "p"))),
            endpoint(&["10.0.0.1"], Some("h"), None),
            endpoint(&["10.0.0.10"], None, None),
            endpoint(&["10.0.0.9"], None, None),
            endpoint(&[], None, Some(("ns", "q"))),
        ];
        for a in &endpoints {
            for b in &endpoints {
                let owned = EndpointIdentity::of(a).cmp(&EndpointIdentity::of(b));
                let (pa, pb) = (Probe::of(a), Probe::of(b));
                let borrowed = (&pa as &dyn IdentityKey).cmp(&pb as &dyn IdentityKey);
                assert_eq!(owned, borrowed, "{:?} vs {:?}", a.addresses, b.addresses);
                let owned_b = EndpointIdentity::of(b);
                assert_eq!(
                    EndpointIdentity::of(a).cmp(&owned_b),
                    (&pa as &dyn IdentityKey).cmp(owned_b.borrow()),
                    "probe against stored key"
                );
            }
        }
        let set: EndpointSet = endpoints.iter().cloned().collect();
        assert_eq!(set.len(), 6, "the two address orders are one endpoint");
        for e in &endpoints {
            assert!(set.contains(e));
        }
    }
}
