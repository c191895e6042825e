//! Packing per-pod addresses into Endpoints subsets (upstream's
//! `RepackSubsets` and `SortSubsets`).
//!
//! The Endpoints API groups addresses by the ports they serve: every distinct
//! set of (address, readiness) pairs becomes one subset holding all the ports
//! served by exactly that set. So a pod resolving a named port to another
//! number than its peers lands in a subset of its own for that port, and an
//! address may appear in several subsets.
//!
//! Order: addresses sort by the bytes of their IP string (so `10.0.0.10`
//! comes before `10.0.0.9`), ties broken by target uid with untargeted
//! addresses first — exactly as upstream. Ports and subsets upstream sort by
//! an MD5 hash of Go's debug dump of the struct, an order that is arbitrary
//! and changed between releases; ecm sorts ports by (name, number, protocol,
//! appProtocol) and subsets by their first port instead. The order carries no
//! meaning for any consumer, and the no-op check repacks the stored subsets
//! before comparing (as v1.36 does), so objects written by upstream are not
//! rewritten for their order.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset};

use crate::equality::{endpoint_address_eq, endpoint_port_eq};

/// One address serving one port (or, for a headless Service without ports,
/// no port), before packing.
#[derive(Clone, Debug, PartialEq)]
pub struct RawEndpoint {
    /// The address.
    pub address: EndpointAddress,
    /// The port it serves; `None` for a port-less headless Service.
    pub port: Option<EndpointPort>,
    /// Whether the address is ready for this port.
    pub ready: bool,
}

/// A port as a map key and sort key: the whole value of the API struct,
/// borrowed.
type PortRef<'a> = (Option<&'a str>, i32, Option<&'a str>, Option<&'a str>);

fn port_ref(port: &EndpointPort) -> PortRef<'_> {
    (
        port.name.as_deref(),
        port.port,
        port.protocol.as_deref(),
        port.app_protocol.as_deref(),
    )
}

/// Packs raw per-pod entries into sorted subsets.
pub fn repack(raw: impl IntoIterator<Item = RawEndpoint>) -> Vec<EndpointSubset> {
    let raw: Vec<RawEndpoint> = raw.into_iter().collect();
    let mut packer = Packer::default();
    for entry in &raw {
        packer.add(&entry.address, entry.port.as_ref(), entry.ready);
    }
    packer.finish()
}

/// Repacks already packed subsets into the canonical layout, for comparing a
/// stored object with a freshly computed one.
pub fn repack_subsets(subsets: &[EndpointSubset]) -> Vec<EndpointSubset> {
    repack_changed(subsets, |_| false, [])
}

/// [`repack_subsets`] with the addresses for which `drop` holds left out
/// and the `extra` entries added: the subsets [`repack`] gives for a set of
/// endpoints, from the subsets of an earlier set and the difference, at the
/// cost of the subsets rather than of the endpoints behind them (an
/// incremental sync drops the addresses of the pods that changed and adds
/// their new ones).
pub fn repack_changed(
    subsets: &[EndpointSubset],
    drop: impl Fn(&EndpointAddress) -> bool,
    extra: impl IntoIterator<Item = RawEndpoint>,
) -> Vec<EndpointSubset> {
    let extra: Vec<RawEndpoint> = extra.into_iter().collect();
    let mut packer = Packer::default();
    add_subsets(&mut packer, subsets, drop);
    for entry in &extra {
        packer.add(&entry.address, entry.port.as_ref(), entry.ready);
    }
    packer.finish()
}

/// Adds every address of `subsets` for which `drop` does not hold, for
/// each port of its subset.
fn add_subsets<'a>(packer: &mut Packer<'a>, subsets: &'a [EndpointSubset], drop: impl Fn(&EndpointAddress) -> bool) {
    for subset in subsets {
        let ports: Vec<Option<&EndpointPort>> = match subset.ports.as_deref() {
            Some(ports) if !ports.is_empty() => ports.iter().map(Some).collect(),
            _ => vec![None],
        };
        for port in ports {
            for address in subset.addresses.iter().flatten().filter(|a| !drop(a)) {
                packer.add(address, port, true);
            }
            for address in subset.not_ready_addresses.iter().flatten().filter(|a| !drop(a)) {
                packer.add(address, port, false);
            }
        }
    }
}

/// Accumulates addresses per port, borrowing them until
/// [`finish`](Packer::finish) copies each into the subsets it lands in.
#[derive(Default)]
struct Packer<'a> {
    /// Each distinct address (by IP and target uid), as first seen.
    addresses: Vec<&'a EndpointAddress>,
    /// Index into `addresses` by (IP, target uid).
    address_index: HashMap<(&'a str, &'a str), usize>,
    /// Per port (`None` = no port), address index → ready. Not ready wins
    /// when one address is seen twice for a port.
    ports: Vec<(Option<&'a EndpointPort>, BTreeMap<usize, bool>)>,
    /// Index into `ports` by port value.
    port_index: HashMap<Option<PortRef<'a>>, usize>,
}

impl<'a> Packer<'a> {
    fn add(&mut self, address: &'a EndpointAddress, port: Option<&'a EndpointPort>, ready: bool) {
        let next = self.addresses.len();
        let address_id = *self
            .address_index
            .entry((address.ip.as_str(), target_uid(address).unwrap_or_default()))
            .or_insert(next);
        if address_id == next {
            self.addresses.push(address);
        }
        let next = self.ports.len();
        let port_id = *self.port_index.entry(port.map(port_ref)).or_insert(next);
        if port_id == next {
            self.ports.push((port, BTreeMap::new()));
        }
        let readiness = self.ports[port_id].1.entry(address_id).or_insert(ready);
        *readiness = *readiness && ready;
    }

    /// The packed subsets, in order, still borrowing their addresses and
    /// ports.
    fn groups(self) -> Vec<Packed<'a>> {
        // Ports served by exactly the same (address, readiness) set share a subset.
        let mut groups: BTreeMap<Vec<(usize, bool)>, Vec<&'a EndpointPort>> = BTreeMap::new();
        for (port, members) in self.ports {
            let ports = groups.entry(members.into_iter().collect()).or_default();
            ports.extend(port);
        }
        let mut packed: Vec<Packed<'a>> = groups
            .into_iter()
            .map(|(members, mut ports)| {
                let (mut ready, mut not_ready): (Vec<&EndpointAddress>, Vec<&EndpointAddress>) =
                    (Vec::new(), Vec::new());
                for (id, is_ready) in members {
                    if is_ready {
                        ready.push(self.addresses[id]);
                    } else {
                        not_ready.push(self.addresses[id]);
                    }
                }
                ready.sort_by(|a, b| compare_addresses(a, b));
                not_ready.sort_by(|a, b| compare_addresses(a, b));
                ports.sort_by(|a, b| port_ref(a).cmp(&port_ref(b)));
                Packed {
                    addresses: ready,
                    not_ready,
                    ports,
                }
            })
            .collect();
        packed.sort_by(|a, b| a.first_port().cmp(&b.first_port()));
        packed
    }

    fn finish(self) -> Vec<EndpointSubset> {
        self.groups()
            .into_iter()
            .map(|packed| EndpointSubset {
                addresses: non_empty(packed.addresses.into_iter().cloned().collect()),
                not_ready_addresses: non_empty(packed.not_ready.into_iter().cloned().collect()),
                ports: non_empty(packed.ports.into_iter().cloned().collect()),
            })
            .collect()
    }
}

/// One packed subset, borrowing from what was packed.
struct Packed<'a> {
    addresses: Vec<&'a EndpointAddress>,
    not_ready: Vec<&'a EndpointAddress>,
    ports: Vec<&'a EndpointPort>,
}

impl Packed<'_> {
    fn first_port(&self) -> Option<PortRef<'_>> {
        self.ports.first().map(|p| port_ref(p))
    }

    /// Semantic equality with `subset` ([`endpoint_subset_eq`](crate::equality::endpoint_subset_eq)).
    fn eq_subset(&self, subset: &EndpointSubset) -> bool {
        fn same<T>(packed: &[&T], stored: Option<&[T]>, eq: fn(&T, &T) -> bool) -> bool {
            let stored = stored.unwrap_or_default();
            packed.len() == stored.len() && packed.iter().zip(stored).all(|(a, b)| eq(a, b))
        }
        same(&self.addresses, subset.addresses.as_deref(), endpoint_address_eq)
            && same(
                &self.not_ready,
                subset.not_ready_addresses.as_deref(),
                endpoint_address_eq,
            )
            && same(&self.ports, subset.ports.as_deref(), endpoint_port_eq)
    }
}

/// Whether `stored`, repacked ([`repack_subsets`]), is semantically equal
/// ([`endpoint_subsets_eq`](crate::equality::endpoint_subsets_eq)) to
/// `subsets`; without building the repacked copy.
pub fn repacked_eq(stored: &[EndpointSubset], subsets: &[EndpointSubset]) -> bool {
    let mut packer = Packer::default();
    add_subsets(&mut packer, stored, |_| false);
    let packed = packer.groups();
    packed.len() == subsets.len() && packed.iter().zip(subsets).all(|(p, s)| p.eq_subset(s))
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

fn target_uid(address: &EndpointAddress) -> Option<&str> {
    address
        .target_ref
        .as_ref()
        .map(|t| t.uid.as_deref().unwrap_or_default())
}

/// Upstream's `LessEndpointAddress` as an ordering: IP string bytes, then
/// target uid, an address without target first.
pub fn compare_addresses(a: &EndpointAddress, b: &EndpointAddress) -> Ordering {
    a.ip.as_bytes()
        .cmp(b.ip.as_bytes())
        .then_with(|| target_uid(a).cmp(&target_uid(b)))
}

#[cfg(test)]
mod tests;
