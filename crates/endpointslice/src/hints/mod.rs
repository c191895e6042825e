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

use ecm_types::wellknown::{ANNOTATION_TOPOLOGY_AWARE_HINTS, ANNOTATION_TOPOLOGY_MODE};

mod cpu;
mod events;
mod slice_info;
pub(crate) mod topology;
pub(crate) mod trafficdist;
pub(crate) mod zones;

pub use events::HintsEvent;
pub(crate) use events::*;
pub(crate) use slice_info::{SliceInfo, remove_hints_from_slices};

pub(crate) use topology::{CacheChange, add_hints};
pub use topology::{TopologyCache, TopologySnapshot};

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

#[cfg(test)]
mod tests;
