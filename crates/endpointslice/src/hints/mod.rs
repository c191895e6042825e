//! Topology hints on EndpointSlice endpoints: which zones (and nodes) an
//! endpoint should serve.
//!
//! Two mechanisms set them, and the reconciler picks one per Service and
//! address type:
//!
//! - the topology annotation (`service.kubernetes.io/topology-mode: Auto`,
//!   or the older `service.kubernetes.io/topology-aware-hints`, which wins
//!   when both are set) enables topology aware hints: endpoints are spread
//!   over zones in proportion to each zone's allocatable CPU
//!   ([`topology`]);
//! - otherwise `spec.trafficDistribution` (`PreferClose`, `PreferSameZone`,
//!   `PreferSameNode`) gives every ready endpoint a hint for its own zone
//!   (and node) ([`trafficdist`]);
//! - with neither, hints are removed ([`remove_hints_from_slices`]).
//!
//! All three work on a [`SliceInfo`]: the slices the reconciler is about to
//! create and update, which they may change, and the unchanged slices,
//! which they only read — a slice that needs new hints is copied into the
//! updates.

use std::collections::BTreeMap;

use ecm_controller::EventType;
use ecm_types::endpoint_slice::{endpoints, endpoints_mut};
use ecm_types::wellknown::{ANNOTATION_TOPOLOGY_AWARE_HINTS, ANNOTATION_TOPOLOGY_MODE};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};

mod cpu;
pub(crate) mod topology;
pub(crate) mod trafficdist;
pub(crate) mod zones;

pub(crate) use topology::{CacheChange, add_hints};
pub use topology::{TopologyCache, TopologySnapshot};

/// Reason of the Normal event emitted when topology aware hints start being
/// set for a Service.
pub(crate) const REASON_HINTS_ENABLED: &str = "TopologyAwareHintsEnabled";
/// Reason of the Warning events explaining why topology aware hints are not
/// (or no longer) set.
pub(crate) const REASON_HINTS_DISABLED: &str = "TopologyAwareHintsDisabled";

/// Event message: a ready endpoint has no zone.
pub(crate) const NO_ZONE_SPECIFIED: &str = "One or more endpoints do not have a zone specified";
/// Event message: allocation left every zone without hints.
pub(crate) const NO_ALLOCATED_HINTS_FOR_ZONES: &str = "No hints allocated for zones";
/// Event message: hints were enabled.
pub(crate) const TOPOLOGY_AWARE_HINTS_ENABLED: &str = "Topology Aware Hints has been enabled";
/// Event message: hints were disabled (the annotation was removed or changed).
pub(crate) const TOPOLOGY_AWARE_HINTS_DISABLED: &str = "Topology Aware Hints has been disabled";
/// Event message: some node lacks a zone or allocatable CPU, or fewer than
/// two zones have ready nodes.
pub(crate) const INSUFFICIENT_NODE_INFO: &str =
    "Insufficient Node information: allocatable CPU or zone not specified on one or more nodes";
/// Event message: the zone ratios are known but cover a single zone.
pub(crate) const NODES_READY_IN_ONE_ZONE_ONLY: &str = "Nodes only ready in one zone";
/// Event message prefix: fewer ready endpoints than zones.
pub(crate) const INSUFFICIENT_NUMBER_OF_ENDPOINTS: &str = "Insufficient number of endpoints";
/// Event message prefix: the zones' minimum shares add up to more than the
/// endpoints there are.
pub(crate) const MIN_ALLOCATION_EXCEEDS_OVERLOAD_THRESHOLD: &str =
    "Unable to allocate minimum required endpoints to each zone without exceeding overload threshold";

/// Appends the address type to an event message, as upstream's
/// `FormatWithAddressType` does: `"<message>, addressType: IPv4"`.
pub(crate) fn with_address_type(message: &str, address_type: &str) -> String {
    format!("{message}, addressType: {address_type}")
}

/// An event about a Service's hints, to be recorded once the slices are
/// written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HintsEvent {
    /// Normal or Warning.
    pub event_type: EventType,
    /// [`REASON_HINTS_ENABLED`] or [`REASON_HINTS_DISABLED`].
    pub reason: &'static str,
    /// The full message, address type included.
    pub message: String,
}

impl HintsEvent {
    /// A `TopologyAwareHintsDisabled` warning with `message` for
    /// `address_type`.
    pub fn disabled(message: &str, address_type: &str) -> Self {
        Self {
            event_type: EventType::Warning,
            reason: REASON_HINTS_DISABLED,
            message: with_address_type(message, address_type),
        }
    }

    /// The `TopologyAwareHintsEnabled` event for `address_type`.
    pub fn enabled(address_type: &str) -> Self {
        Self {
            event_type: EventType::Normal,
            reason: REASON_HINTS_ENABLED,
            message: with_address_type(TOPOLOGY_AWARE_HINTS_ENABLED, address_type),
        }
    }
}

/// Whether a Service's annotations enable topology aware hints (upstream's
/// `hintsEnabled`): the value of `service.kubernetes.io/topology-aware-hints`
/// if that annotation is present, else of
/// `service.kubernetes.io/topology-mode`, is exactly `Auto` or `auto`. The
/// older annotation wins even when its value disables hints.
pub(crate) fn hints_enabled(annotations: Option<&BTreeMap<String, String>>) -> bool {
    let Some(annotations) = annotations else {
        return false;
    };
    let value = annotations
        .get(ANNOTATION_TOPOLOGY_AWARE_HINTS)
        .or_else(|| annotations.get(ANNOTATION_TOPOLOGY_MODE));
    matches!(value.map(String::as_str), Some("Auto" | "auto"))
}

/// The slices of one Service and address type the hint mechanisms work on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SliceInfo<'a> {
    /// Slices to create; hints may be changed in place.
    pub to_create: Vec<EndpointSlice>,
    /// Slices to update; hints may be changed in place, and unchanged slices
    /// whose hints must change are copied here.
    pub to_update: Vec<EndpointSlice>,
    /// Slices that need no write so far. Never modified.
    pub unchanged: Vec<&'a EndpointSlice>,
}

impl SliceInfo<'_> {
    /// The slices that will be written, creates first.
    fn writable(&mut self) -> impl Iterator<Item = &mut EndpointSlice> {
        self.to_create.iter_mut().chain(self.to_update.iter_mut())
    }
}

/// Whether an endpoint's `ready` condition is true.
pub(crate) fn endpoint_ready(endpoint: &Endpoint) -> bool {
    endpoint.conditions.as_ref().and_then(|c| c.ready) == Some(true)
}

/// Removes every hint (upstream's `RemoveHintsFromSlices`): all endpoints of
/// the slices to create and update lose their hints, and every unchanged
/// slice with a hinted endpoint is copied, cleared and moved to the updates.
pub(crate) fn remove_hints_from_slices(si: &mut SliceInfo<'_>) {
    for slice in si.writable() {
        for endpoint in endpoints_mut(slice) {
            endpoint.hints = None;
        }
    }
    let (hinted, unhinted): (Vec<&EndpointSlice>, Vec<&EndpointSlice>) = std::mem::take(&mut si.unchanged)
        .into_iter()
        .partition(|slice| endpoints(slice).iter().any(|e| e.hints.is_some()));
    for slice in hinted {
        let mut copy = EndpointSlice::clone(slice);
        for endpoint in endpoints_mut(&mut copy) {
            endpoint.hints = None;
        }
        si.to_update.push(copy);
    }
    si.unchanged = unhinted;
}

#[cfg(test)]
mod tests;
