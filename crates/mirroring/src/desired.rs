//! The desired mirrored endpoints of an Endpoints object, grouped by address
//! type and port list (upstream's `reconcile` first half, `desiredCalc`,
//! `initPorts`, `addAddress`, `addressToEndpoint`, `epPortsToEpsPorts`).
//!
//! Pure: no I/O, no clock. The subsets are first put into their canonical
//! layout ([`repack_subsets`]); then every repacked subset yields one group
//! per address family, holding at most `max_endpoints_per_subset` endpoints
//! (ready addresses taken before not-ready ones, in canonical order).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

use ecm_types::endpoint_set::EndpointSet;
use ecm_types::ip::parse_ip;
use ecm_types::port_map::PortMapKey;
use ecm_types::wellknown::DEFAULT_PROTOCOL;
use ecm_types::{IpFamily, endpoint_slice};
use k8s_openapi::api::core::v1::{self as core, EndpointAddress, Endpoints};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};

use ecm_types::repack::repack_subsets;

/// What groups mirrored slices: the address type and the port list,
/// regardless of port order (upstream's `addrTypePortMapKey`).
///
/// Existing slices of an address type the controller never writes (`FQDN`)
/// get a key no desired group has, so they are deleted.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SliceKey {
    /// `IPv4`, `IPv6`, or whatever an existing slice says.
    pub address_type: String,
    /// The port list.
    pub ports: PortMapKey,
}

impl SliceKey {
    /// The key of a desired group.
    pub(crate) fn new(family: IpFamily, ports: &[EndpointPort]) -> Self {
        Self {
            address_type: family.as_api().to_owned(),
            ports: PortMapKey::new(ports),
        }
    }

    /// The key of an existing slice.
    pub(crate) fn of(slice: &EndpointSlice) -> Self {
        Self {
            address_type: slice.address_type.clone(),
            ports: PortMapKey::new(endpoint_slice::ports(slice)),
        }
    }
}

/// The endpoints one slice should hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct DesiredGroup {
    /// The slice's ports, as converted from the subset.
    pub ports: Vec<EndpointPort>,
    /// The endpoints, keyed by identity (two addresses of the same identity
    /// collapse into one endpoint, the later one winning).
    pub endpoints: EndpointSet,
}

/// The desired state of one Endpoints object.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Desired {
    /// One group per repacked subset and address family. Both families of a
    /// subset have a group, the one without addresses being empty.
    pub groups: BTreeMap<SliceKey, DesiredGroup>,
    /// Addresses whose IP does not parse (only those examined before a
    /// subset reached its cap).
    pub invalid_addresses: usize,
    /// Addresses not mirrored, invalid ones included (upstream's
    /// `addressesSkipped`).
    pub addresses_skipped: usize,
}

impl Desired {
    /// The number of desired endpoints over all groups.
    #[cfg(test)]
    pub(crate) fn endpoint_count(&self) -> usize {
        self.groups.values().map(|g| g.endpoints.len()).sum()
    }
}

/// Computes the desired state of `endpoints` with at most
/// `max_endpoints_per_subset` addresses mirrored per repacked subset.
pub(crate) fn desired(endpoints: &Endpoints, max_endpoints_per_subset: usize) -> Desired {
    let mut out = Desired::default();
    for subset in repack_subsets(endpoints.subsets.as_deref().unwrap_or_default()) {
        let ports = convert_ports(subset.ports.as_deref().unwrap_or_default());
        let keys = [IpFamily::V4, IpFamily::V6].map(|family| {
            let key = SliceKey::new(family, &ports);
            // A later subset with the same key replaces the port list, as
            // upstream (the lists only differ in order).
            out.groups.entry(key.clone()).or_default().ports.clone_from(&ports);
            key
        });
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset.not_ready_addresses.iter().flatten().map(|a| (a, false));
        let total =
            subset.addresses.as_ref().map_or(0, Vec::len) + subset.not_ready_addresses.as_ref().map_or(0, Vec::len);
        let mut added = 0;
        for (address, is_ready) in ready.chain(not_ready) {
            if added >= max_endpoints_per_subset {
                break;
            }
            if let Some((family, endpoint)) = address_to_endpoint(address, is_ready) {
                let key = &keys[usize::from(family == IpFamily::V6)];
                if let Some(group) = out.groups.get_mut(key) {
                    group.endpoints.insert(endpoint);
                }
                added += 1;
            } else {
                out.invalid_addresses += 1;
                tracing::info!(
                    endpoints = %ecm_informer::ObjectKey::of(endpoints),
                    ip = %address.ip,
                    "address in Endpoints is not a valid IP, it will not be mirrored to an EndpointSlice"
                );
            }
        }
        out.addresses_skipped += total - added;
    }
    out
}

/// Converts Endpoints ports to EndpointSlice ports (upstream's
/// `epPortsToEpsPorts`): name (always present, possibly empty), number,
/// protocol and appProtocol copied. An absent protocol becomes `TCP`, the
/// value the API server stores for it.
pub(crate) fn convert_ports(ports: &[core::EndpointPort]) -> Vec<EndpointPort> {
    ports
        .iter()
        .map(|p| EndpointPort {
            name: Some(p.name.clone().unwrap_or_default()),
            port: Some(p.port),
            protocol: Some(p.protocol.clone().unwrap_or_else(|| DEFAULT_PROTOCOL.to_owned())),
            app_protocol: p.app_protocol.clone(),
        })
        .collect()
}

/// Parses an Endpoints IP as upstream's `ParseIPSloppy`: IPv4 octets may
/// carry leading zeros, and an IPv4-mapped IPv6 address is the IPv4 address
/// it maps.
pub(crate) fn parse_endpoints_ip(text: &str) -> Option<IpAddr> {
    parse_ip(text).or_else(|| {
        text.parse::<Ipv6Addr>()
            .ok()
            .and_then(|v6| v6.to_ipv4_mapped())
            .map(IpAddr::V4)
    })
}

/// The mirrored endpoint of an Endpoints address and its family, or `None`
/// when the IP does not parse (upstream's `addressToEndpoint`).
///
/// The IP is re-printed in canonical form; `ready` is the only condition
/// set; the hostname is copied when non-empty, the node name and target
/// reference as they are. Zone and hints stay unset.
pub(crate) fn address_to_endpoint(address: &EndpointAddress, ready: bool) -> Option<(IpFamily, Endpoint)> {
    let ip = parse_endpoints_ip(&address.ip)?;
    let family = match ip {
        IpAddr::V4(_) => IpFamily::V4,
        IpAddr::V6(_) => IpFamily::V6,
    };
    let endpoint = Endpoint {
        addresses: vec![ip.to_string()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            ..EndpointConditions::default()
        }),
        hostname: address.hostname.clone().filter(|h| !h.is_empty()),
        node_name: address.node_name.clone(),
        target_ref: address.target_ref.clone(),
        ..Endpoint::default()
    };
    Some((family, endpoint))
}

#[cfg(test)]
mod tests;
