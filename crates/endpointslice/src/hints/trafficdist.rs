//! Hints from `spec.trafficDistribution` (upstream's `trafficdist`
//! package).
//!
//! `PreferClose` and `PreferSameZone` hint every ready endpoint for its own
//! zone; `PreferSameNode` also for its own node. No allocation or balancing
//! takes place (contrast with [`super::topology`]). Any other value removes
//! hints.

use ecm_types::endpoint_slice::{endpoints, endpoints_mut};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointHints, EndpointSlice, ForNode, ForZone};

use super::slice_info::{SliceInfo, endpoint_ready};

/// `spec.trafficDistribution: PreferClose` (GA in 1.33).
pub(crate) const PREFER_CLOSE: &str = "PreferClose";
/// `spec.trafficDistribution: PreferSameZone` (1.33+, GA in 1.35).
pub(crate) const PREFER_SAME_ZONE: &str = "PreferSameZone";
/// `spec.trafficDistribution: PreferSameNode` (1.33+, GA in 1.35).
pub(crate) const PREFER_SAME_NODE: &str = "PreferSameNode";

/// Whether `value` is a `trafficDistribution` this controller acts on
/// (upstream's `validTrafficDistribution` with PreferSameTrafficDistribution
/// enabled, as it is by default since 1.35).
pub(crate) fn valid_traffic_distribution(value: Option<&str>) -> bool {
    matches!(value, Some(PREFER_CLOSE | PREFER_SAME_ZONE | PREFER_SAME_NODE))
}

/// How a `trafficDistribution` value hints endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Heuristic {
    /// Cluster-wide routing: no hints at all.
    RemoveHints,
    /// Own-zone hints, and own-node hints when `node_hints`.
    PreferClose { node_hints: bool },
}

impl Heuristic {
    fn for_value(value: Option<&str>) -> Self {
        match value {
            Some(PREFER_CLOSE | PREFER_SAME_ZONE) => Self::PreferClose { node_hints: false },
            Some(PREFER_SAME_NODE) => Self::PreferClose { node_hints: true },
            _ => Self::RemoveHints,
        }
    }

    /// The hints a ready endpoint should have.
    fn wanted(self, endpoint: &Endpoint) -> Option<EndpointHints> {
        let Self::PreferClose { node_hints } = self else {
            return None;
        };
        let for_zones = endpoint.zone.as_ref().map(|zone| vec![ForZone { name: zone.clone() }]);
        let for_nodes = endpoint
            .node_name
            .as_ref()
            .filter(|_| node_hints)
            .map(|node| vec![ForNode { name: node.clone() }]);
        (for_zones.is_some() || for_nodes.is_some()).then_some(EndpointHints { for_zones, for_nodes })
    }

    /// Whether an unchanged slice must be rewritten: for removal, any
    /// endpoint with hints; otherwise any ready endpoint whose zone (or node)
    /// hint is missing, wrong or stale.
    fn needs_update(self, slice: &EndpointSlice) -> bool {
        let Self::PreferClose { node_hints } = self else {
            return endpoints(slice).iter().any(|e| e.hints.is_some());
        };
        endpoints(slice).iter().filter(|e| endpoint_ready(e)).any(|e| {
            let zones = e
                .hints
                .as_ref()
                .and_then(|h| h.for_zones.as_deref())
                .unwrap_or_default();
            let nodes = e
                .hints
                .as_ref()
                .and_then(|h| h.for_nodes.as_deref())
                .unwrap_or_default();
            let zone_wrong = match &e.zone {
                Some(zone) => !matches!(zones, [only] if only.name == *zone),
                None => !zones.is_empty(),
            };
            let node_wrong = match e.node_name.as_ref().filter(|_| node_hints) {
                Some(node) => !matches!(nodes, [only] if only.name == *node),
                None => !nodes.is_empty(),
            };
            zone_wrong || node_wrong
        })
    }

    /// Sets the hints of a slice to write. The removal heuristic clears every
    /// endpoint; the others set ready endpoints only — not-ready endpoints
    /// keep whatever hints they had (upstream quirk).
    fn update(self, slice: &mut EndpointSlice) {
        for endpoint in endpoints_mut(slice) {
            match self {
                Self::RemoveHints => endpoint.hints = None,
                Self::PreferClose { .. } if endpoint_ready(endpoint) => endpoint.hints = self.wanted(endpoint),
                Self::PreferClose { .. } => {}
            }
        }
    }
}

/// Brings the hints of one Service's slices in line with its
/// `trafficDistribution` (upstream's `ReconcileHints`): unchanged slices
/// with missing or wrong hints are copied into the updates, then every slice
/// to create or update gets its hints set.
pub(crate) fn reconcile_hints<'a>(traffic_distribution: Option<&str>, mut si: SliceInfo<'a>) -> SliceInfo<'a> {
    let heuristic = Heuristic::for_value(traffic_distribution);
    let (stale, current): (Vec<&EndpointSlice>, Vec<&EndpointSlice>) = std::mem::take(&mut si.unchanged)
        .into_iter()
        .partition(|slice| heuristic.needs_update(slice));
    si.to_update.extend(stale.into_iter().cloned());
    si.unchanged = current;
    for slice in si.to_create.iter_mut().chain(si.to_update.iter_mut()) {
        heuristic.update(slice);
    }
    si
}

#[cfg(test)]
mod tests;
