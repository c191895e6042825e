//! Topology aware hints: the node/zone CPU model and the hint allocation
//! for Services annotated `topology-mode: Auto` (upstream's
//! `topologycache` package).
//!
//! [`TopologyCache`] holds the shared state: each zone's share of the
//! allocatable CPU of ready worker nodes (refreshed by the topology worker
//! through [`TopologyCache::set_nodes`]) and, per Service and address type,
//! how many endpoints were hinted to each zone (read by
//! [`TopologyCache::overloaded_services`] to re-sync Services after node
//! changes). [`add_hints`] is the allocation itself, pure: it reads a
//! [`TopologySnapshot`] and returns the change to make to the cache.

use parking_lot::{Mutex, MutexGuard};
use std::collections::{BTreeMap, BTreeSet};

use ecm_informer::ObjectKey;
use ecm_types::endpoint_slice::{endpoints, endpoints_mut};
use ecm_types::wellknown::{LABEL_NODE_ROLE_CONTROL_PLANE, LABEL_NODE_ROLE_MASTER, LABEL_TOPOLOGY_ZONE};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::{EndpointHints, ForZone};

use super::cpu::milli_value;
use super::events::{HintsEvent, NO_ALLOCATED_HINTS_FOR_ZONES, NO_ZONE_SPECIFIED};
use super::slice_info::{SliceInfo, endpoint_ready, remove_hints_from_slices};
use super::zones::{
    ZoneCounts, ZoneRatios, allocations, giving_and_receiving, hints_by_zone, redistribute, service_overloaded,
};

/// How the cache should change after hints were computed for one Service
/// and address type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheChange {
    /// Record these hints per zone (hints are populated for the Service).
    Set(ZoneCounts),
    /// Forget the hints of this address type (and that the Service has
    /// hints at all).
    Remove,
}

/// What `add_hints` needs to know of the cache, read once per sync.
#[derive(Clone, Debug, PartialEq)]
pub struct TopologySnapshot {
    /// Each zone's CPU share; `None` when the node information is
    /// insufficient, empty before the first [`TopologyCache::set_nodes`].
    pub ratios: Option<ZoneRatios>,
    /// Whether hints are recorded for the Service.
    pub hints_populated: bool,
}

impl Default for TopologySnapshot {
    /// The view of a fresh cache: no ratios yet, no hints.
    fn default() -> Self {
        Self {
            ratios: Some(ZoneRatios::new()),
            hints_populated: false,
        }
    }
}

/// What [`add_hints`] decided.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HintsOutcome<'a> {
    /// The slices, with hints set or removed.
    pub slices: SliceInfo<'a>,
    /// Events to record for the Service.
    pub events: Vec<HintsEvent>,
    /// The change to make to the cache.
    pub change: CacheChange,
}

/// Sets topology aware hints on one Service's slices of one address type
/// (upstream's `TopologyCache.AddHints`).
///
/// 1. Count the ready endpoints and compute each zone's allocation; if none
///    is possible, remove all hints with a `TopologyAwareHintsDisabled`
///    event saying why.
/// 2. Keep unchanged slices whose hints still fit the allocation, counting
///    their hints; copy the others into the updates.
/// 3. Hint every ready endpoint of the slices to write for its own zone
///    (an endpoint without zone disables hints); not-ready endpoints keep
///    whatever hints they had (upstream quirk).
/// 4. Move hints from zones above their share to zones below it.
///
/// On success the hints per zone are recorded, with a
/// `TopologyAwareHintsEnabled` event if the Service had none recorded.
pub(crate) fn add_hints<'a>(
    snapshot: &TopologySnapshot,
    address_type: &str,
    mut si: SliceInfo<'a>,
) -> HintsOutcome<'a> {
    let give_up = |mut si: SliceInfo<'a>, message: &str| {
        tracing::info!(address_type, reason = message, "removing topology hints");
        remove_hints_from_slices(&mut si);
        HintsOutcome {
            slices: si,
            events: vec![HintsEvent::disabled(message, address_type)],
            change: CacheChange::Remove,
        }
    };

    let ready = si
        .to_create
        .iter()
        .chain(&si.to_update)
        .chain(si.unchanged.iter().copied())
        .flat_map(endpoints)
        .filter(|e| endpoint_ready(e))
        .count();
    let allocations = match allocations(snapshot.ratios.as_ref(), ready) {
        Ok(allocations) => allocations,
        Err(message) => return give_up(si, &message),
    };

    let mut allocated = ZoneCounts::new();
    let unchanged = std::mem::take(&mut si.unchanged);
    for slice in unchanged {
        match hints_by_zone(slice, &allocated, &allocations) {
            Some(counts) => {
                for (zone, n) in counts {
                    *allocated.entry(zone).or_default() += n;
                }
                si.unchanged.push(slice);
            }
            None => si.to_update.push(slice.clone()),
        }
    }

    let mut zone_missing = false;
    'slices: for slice in si.to_create.iter_mut().chain(si.to_update.iter_mut()) {
        for endpoint in endpoints_mut(slice) {
            if !endpoint_ready(endpoint) {
                continue;
            }
            let Some(zone) = endpoint.zone.clone().filter(|z| !z.is_empty()) else {
                zone_missing = true;
                break 'slices;
            };
            endpoint.hints = Some(EndpointHints {
                for_zones: Some(vec![ForZone { name: zone.clone() }]),
                for_nodes: None,
            });
            *allocated.entry(zone).or_default() += 1;
        }
    }
    if zone_missing {
        return give_up(si, NO_ZONE_SPECIFIED);
    }

    let (giving, receiving) = giving_and_receiving(&allocations, &allocated);
    let changes = redistribute(
        si.to_create.iter_mut().chain(si.to_update.iter_mut()),
        giving,
        receiving,
    );
    for (zone, change) in changes {
        *allocated.entry(zone).or_default() += change;
    }
    if allocated.is_empty() {
        return give_up(si, NO_ALLOCATED_HINTS_FOR_ZONES);
    }

    let events = if snapshot.hints_populated {
        Vec::new()
    } else {
        tracing::info!(address_type, "topology aware hints enabled, adding hints");
        vec![HintsEvent::enabled(address_type)]
    };
    HintsOutcome {
        slices: si,
        events,
        change: CacheChange::Set(allocated),
    }
}

/// Node CPU per zone and the hints recorded per Service; shared between the
/// topology worker and the Service workers (one mutex).
#[derive(Debug)]
pub struct TopologyCache {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Whether the last `set_nodes` found usable data on every node.
    sufficient_node_info: bool,
    /// Allocatable millicores per zone; `None` when insufficient.
    cpu_by_zone: Option<BTreeMap<String, i64>>,
    /// `None` when insufficient; empty before the first `set_nodes`.
    ratios: Option<ZoneRatios>,
    /// Service → address type → hints per zone.
    endpoints_by_service: BTreeMap<ObjectKey, BTreeMap<String, ZoneCounts>>,
    /// Services with hints recorded for any address type.
    hints_populated: BTreeSet<ObjectKey>,
}

impl Default for TopologyCache {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a node is left out of the CPU model: control-plane nodes, by
/// either role label, whatever its value.
fn excluded(node: &Node) -> bool {
    node.metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(LABEL_NODE_ROLE_CONTROL_PLANE) || l.contains_key(LABEL_NODE_ROLE_MASTER))
}

/// Whether the node's first `Ready` condition is `True`.
pub(crate) fn ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

fn allocatable_milli_cpu(node: &Node) -> i64 {
    node.status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .and_then(|a| a.get("cpu"))
        .and_then(|q| milli_value(&q.0))
        .unwrap_or_default()
}

impl TopologyCache {
    /// An empty cache: no node data yet (hints are refused with "Nodes only
    /// ready in one zone" until [`set_nodes`](Self::set_nodes) runs).
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                sufficient_node_info: false,
                cpu_by_zone: Some(BTreeMap::new()),
                ratios: Some(ZoneRatios::new()),
                endpoints_by_service: BTreeMap::new(),
                hints_populated: BTreeSet::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Recomputes each zone's share of the allocatable CPU from `nodes`
    /// (upstream's `SetNodes`).
    ///
    /// Control-plane nodes and nodes that are not Ready are ignored. If any
    /// other node has no zone, an empty zone or no allocatable CPU, or fewer
    /// than two zones remain, the information is insufficient and every
    /// Service's hints are refused until the next call.
    pub fn set_nodes<'n>(&self, nodes: impl IntoIterator<Item = &'n Node>) {
        let mut cpu_by_zone = BTreeMap::<String, i64>::new();
        let mut sufficient = true;
        let mut total = 0_i64;
        for node in nodes {
            if excluded(node) || !ready(node) {
                continue;
            }
            let cpu = allocatable_milli_cpu(node);
            let zone = node
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_TOPOLOGY_ZONE))
                .filter(|z| !z.is_empty());
            let Some(zone) = zone.filter(|_| cpu != 0) else {
                tracing::info!(
                    node = node.metadata.name.as_deref().unwrap_or_default(),
                    "can't get CPU or zone information for node"
                );
                cpu_by_zone.clear();
                sufficient = false;
                break;
            };
            total += cpu;
            *cpu_by_zone.entry(zone.clone()).or_default() += cpu;
        }
        let mut state = self.lock();
        if total == 0 || !sufficient || cpu_by_zone.len() < 2 {
            tracing::debug!(
                zones = cpu_by_zone.len(),
                total,
                sufficient,
                "insufficient node info for topology hints"
            );
            state.sufficient_node_info = false;
            state.cpu_by_zone = None;
            state.ratios = None;
        } else {
            state.ratios = Some(
                cpu_by_zone
                    .iter()
                    .map(|(zone, cpu)| (zone.clone(), *cpu as f64 / total as f64))
                    .collect(),
            );
            state.cpu_by_zone = Some(cpu_by_zone);
            state.sufficient_node_info = true;
        }
    }

    /// Whether the last [`set_nodes`](Self::set_nodes) found enough data.
    pub fn sufficient_node_info(&self) -> bool {
        self.lock().sufficient_node_info
    }

    /// Allocatable millicores per zone, as of the last
    /// [`set_nodes`](Self::set_nodes); `None` when insufficient.
    pub fn cpu_by_zone(&self) -> Option<BTreeMap<String, i64>> {
        self.lock().cpu_by_zone.clone()
    }

    /// Each zone's CPU share; `None` when insufficient.
    pub fn zone_ratios(&self) -> Option<ZoneRatios> {
        self.lock().ratios.clone()
    }

    /// What `add_hints` needs to know for `service`.
    pub fn snapshot(&self, service: &ObjectKey) -> TopologySnapshot {
        let state = self.lock();
        TopologySnapshot {
            ratios: state.ratios.clone(),
            hints_populated: state.hints_populated.contains(service),
        }
    }

    /// Whether hints are recorded for `service` (any address type).
    pub fn has_populated_hints(&self, service: &ObjectKey) -> bool {
        self.lock().hints_populated.contains(service)
    }

    /// The hints per zone recorded for `service` and `address_type`.
    pub fn hints(&self, service: &ObjectKey, address_type: &str) -> Option<ZoneCounts> {
        self.lock()
            .endpoints_by_service
            .get(service)
            .and_then(|by_type| by_type.get(address_type))
            .cloned()
    }

    /// Records the hints per zone of `service` and `address_type`.
    pub fn set_hints(&self, service: &ObjectKey, address_type: &str, counts: ZoneCounts) {
        let mut state = self.lock();
        state
            .endpoints_by_service
            .entry(service.clone())
            .or_default()
            .insert(address_type.to_owned(), counts);
        state.hints_populated.insert(service.clone());
    }

    /// Forgets the hints of `service` for `address_type`, and that the
    /// Service has hints at all (upstream's `RemoveHints`, which clears the
    /// flag even when another address type still has hints).
    pub fn remove_hints(&self, service: &ObjectKey, address_type: &str) {
        let mut state = self.lock();
        if let Some(by_type) = state.endpoints_by_service.get_mut(service) {
            by_type.remove(address_type);
            if by_type.is_empty() {
                state.endpoints_by_service.remove(service);
            }
        }
        state.hints_populated.remove(service);
    }

    /// Applies the outcome of `add_hints` for `service` and `address_type`.
    pub fn apply(&self, service: &ObjectKey, address_type: &str, change: &CacheChange) {
        match change {
            CacheChange::Set(counts) => self.set_hints(service, address_type, counts.clone()),
            CacheChange::Remove => self.remove_hints(service, address_type),
        }
    }

    /// `add_hints` against this cache, applying its change: the shape of
    /// upstream's `AddHints`.
    pub fn add_hints<'a>(
        &self,
        service: &ObjectKey,
        address_type: &str,
        si: SliceInfo<'a>,
    ) -> (SliceInfo<'a>, Vec<HintsEvent>) {
        let outcome = add_hints(&self.snapshot(service), address_type, si);
        self.apply(service, address_type, &outcome.change);
        (outcome.slices, outcome.events)
    }

    /// The Services whose recorded hints leave some zone below its minimum
    /// share under the current ratios (upstream's `GetOverloadedServices`),
    /// in key order. The topology worker re-syncs them after node changes.
    pub fn overloaded_services(&self) -> Vec<ObjectKey> {
        let state = self.lock();
        state
            .endpoints_by_service
            .iter()
            .filter(|(_, by_type)| {
                by_type
                    .values()
                    .any(|hints| service_overloaded(hints, state.ratios.as_ref()))
            })
            .map(|(service, _)| service.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests;
