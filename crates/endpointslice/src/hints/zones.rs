//! The arithmetic of topology aware hints: how many endpoints each zone
//! should get, which zones give endpoints to which, and when a Service is
//! overloaded (upstream's `getAllocations`, `getGivingAndReceivingZones`,
//! `redistributeHints`, `getHintsByZone`, `serviceOverloaded`).
//!
//! Zones live in ordered maps, so where upstream picks among equal
//! candidates in map order, the zone that sorts first wins here.

use std::collections::BTreeMap;

use ecm_types::endpoint_slice::{endpoints, endpoints_mut};
use k8s_openapi::api::discovery::v1::{EndpointHints, EndpointSlice, ForZone};

use super::events::{
    INSUFFICIENT_NODE_INFO, INSUFFICIENT_NUMBER_OF_ENDPOINTS, MIN_ALLOCATION_EXCEEDS_OVERLOAD_THRESHOLD,
    NODES_READY_IN_ONE_ZONE_ONLY,
};
use super::slice_info::endpoint_ready;

/// The largest overload any endpoint should see: a zone gets at least
/// `desired / (1 + 0.2)` endpoints.
pub(crate) const OVERLOAD_THRESHOLD: f64 = 0.2;

/// `1 / (1 + OVERLOAD_THRESHOLD)`, computed as upstream computes it.
const MINIMUM_SHARE: f64 = 1.0 / (1.0 + OVERLOAD_THRESHOLD);

/// Each zone's share of the cluster's allocatable CPU, summing to 1.
pub(crate) type ZoneRatios = BTreeMap<String, f64>;

/// Endpoints (or hints) per zone.
pub(crate) type ZoneCounts = BTreeMap<String, i64>;

/// How many endpoints a zone should be allocated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Allocation {
    /// Fewest endpoints that keep the zone within the overload threshold.
    pub minimum: i64,
    /// Most endpoints the zone may get while every other zone gets its
    /// minimum.
    pub maximum: i64,
    /// The zone's proportional share, at least `minimum`.
    pub desired: f64,
}

/// Allocations for `endpoints` ready endpoints over the zones of `ratios`
/// (upstream's `getAllocations`), or the reason none are possible, as an
/// event message without the address type.
///
/// `ratios` is `None` when the node information is insufficient.
pub(crate) fn allocations(
    ratios: Option<&ZoneRatios>,
    endpoints: usize,
) -> Result<BTreeMap<String, Allocation>, String> {
    let Some(ratios) = ratios else {
        return Err(INSUFFICIENT_NODE_INFO.to_owned());
    };
    if ratios.len() < 2 {
        return Err(NODES_READY_IN_ONE_ZONE_ONLY.to_owned());
    }
    if ratios.len() > endpoints {
        return Err(format!(
            "{INSUFFICIENT_NUMBER_OF_ENDPOINTS} ({endpoints} endpoints, {} zones)",
            ratios.len()
        ));
    }
    let total = endpoints as i64;
    let mut allocations = BTreeMap::new();
    let mut minimum_total = 0;
    for (zone, ratio) in ratios {
        let desired = ratio * endpoints as f64;
        let minimum = (desired * MINIMUM_SHARE).ceil() as i64;
        minimum_total += minimum;
        if minimum_total > total {
            return Err(format!(
                "{MIN_ALLOCATION_EXCEEDS_OVERLOAD_THRESHOLD} ({endpoints} endpoints, {} zones)",
                ratios.len()
            ));
        }
        allocations.insert(
            zone.clone(),
            Allocation {
                minimum,
                maximum: 0,
                desired: desired.max(minimum as f64),
            },
        );
    }
    for allocation in allocations.values_mut() {
        allocation.maximum = allocation.minimum + total - minimum_total;
    }
    Ok(allocations)
}

/// The zone with the largest positive value; the first in name order on
/// ties (upstream's `getMost`, which breaks ties by map order).
fn most(values: &BTreeMap<String, f64>) -> Option<(&String, f64)> {
    let mut best: Option<(&String, f64)> = None;
    for (zone, value) in values {
        if *value > best.map_or(0.0, |(_, v)| v) {
            best = Some((zone, *value));
        }
    }
    best
}

/// How many endpoints each zone should give away and receive, given the
/// allocations and the hints already allocated per zone (upstream's
/// `getGivingAndReceivingZones`).
///
/// Surpluses and deficits are exact fractions; one endpoint at a time moves
/// from the zone with the largest surplus to the zone with the largest
/// deficit, while both are at least one half and not both below one.
pub(crate) fn giving_and_receiving(
    allocations: &BTreeMap<String, Allocation>,
    allocated: &ZoneCounts,
) -> (ZoneCounts, ZoneCounts) {
    let mut surplus = BTreeMap::new();
    let mut deficit = BTreeMap::new();
    for (zone, allocation) in allocations {
        let hints = allocated.get(zone).copied().unwrap_or_default() as f64;
        if hints > allocation.desired {
            surplus.insert(zone.clone(), hints - allocation.desired);
        } else if hints < allocation.desired {
            deficit.insert(zone.clone(), allocation.desired - hints);
        }
    }
    let mut giving = ZoneCounts::new();
    let mut receiving = ZoneCounts::new();
    while let (Some((giver, to_give)), Some((receiver, to_receive))) = (most(&surplus), most(&deficit)) {
        if (to_give < 1.0 && to_receive < 1.0) || to_give < 0.5 || to_receive < 0.5 {
            break;
        }
        let (giver, receiver) = (giver.clone(), receiver.clone());
        *giving.entry(giver.clone()).or_default() += 1;
        *receiving.entry(receiver.clone()).or_default() += 1;
        if let Some(v) = surplus.get_mut(&giver) {
            *v -= 1.0;
        }
        if let Some(v) = deficit.get_mut(&receiver) {
            *v -= 1.0;
        }
    }
    (giving, receiving)
}

/// Re-hints ready endpoints of zones that give to zones that receive, in
/// slice order then endpoint order, and returns the change in hints per
/// zone (upstream's `redistributeHints`). Each giving endpoint goes to the
/// first receiving zone, in name order, that still needs endpoints.
pub(crate) fn redistribute<'s>(
    slices: impl IntoIterator<Item = &'s mut EndpointSlice>,
    mut giving: ZoneCounts,
    mut receiving: ZoneCounts,
) -> ZoneCounts {
    let mut changes = ZoneCounts::new();
    for slice in slices {
        for endpoint in endpoints_mut(slice) {
            if !endpoint_ready(endpoint) {
                continue;
            }
            if giving.is_empty() || receiving.is_empty() {
                return changes;
            }
            let Some(zone) = endpoint.zone.clone().filter(|z| !z.is_empty()) else {
                continue;
            };
            if giving.get(&zone).copied().unwrap_or_default() <= 0 {
                continue;
            }
            let Some(receiver) = receiving.iter().find(|(_, n)| **n > 0).map(|(z, _)| z.clone()) else {
                continue;
            };
            endpoint.hints = Some(EndpointHints {
                for_zones: Some(vec![ForZone { name: receiver.clone() }]),
                for_nodes: None,
            });
            take_one(&mut giving, &zone);
            take_one(&mut receiving, &receiver);
            *changes.entry(receiver).or_default() += 1;
            *changes.entry(zone).or_default() -= 1;
        }
    }
    changes
}

/// Decrements a zone's count, dropping it when it reaches zero.
fn take_one(counts: &mut ZoneCounts, zone: &str) {
    if let Some(n) = counts.get_mut(zone) {
        *n -= 1;
        if *n <= 0 {
            counts.remove(zone);
        }
    }
}

/// The hints per zone an unchanged slice carries, or `None` when the slice
/// must be rewritten (upstream's `getHintsByZone`): a ready endpoint without
/// zone hints, a hint for a zone without allocation, or hints that would
/// push a zone over its maximum given `allocated` so far.
pub(crate) fn hints_by_zone(
    slice: &EndpointSlice,
    allocated: &ZoneCounts,
    allocations: &BTreeMap<String, Allocation>,
) -> Option<ZoneCounts> {
    let mut counts = ZoneCounts::new();
    for endpoint in endpoints(slice).iter().filter(|e| endpoint_ready(e)) {
        let zones = endpoint
            .hints
            .as_ref()
            .and_then(|h| h.for_zones.as_deref())
            .unwrap_or_default();
        if zones.is_empty() {
            return None;
        }
        for zone in zones {
            if !allocations.contains_key(&zone.name) {
                return None;
            }
            *counts.entry(zone.name.clone()).or_default() += 1;
        }
    }
    for (zone, count) in &counts {
        let already = allocated.get(zone).copied().unwrap_or_default();
        let maximum = allocations.get(zone)?.maximum;
        if count + already > maximum {
            return None;
        }
    }
    Some(counts)
}

/// Whether a Service whose hints are spread as `hints` over zones is
/// overloaded under the current zone ratios (upstream's
/// `serviceOverloaded`): some zone with a ratio has no hinted endpoints or
/// fewer than its minimum share, or the ratios are unknown.
pub(crate) fn service_overloaded(hints: &ZoneCounts, ratios: Option<&ZoneRatios>) -> bool {
    if hints.is_empty() {
        return false;
    }
    let Some(ratios) = ratios.filter(|r| !r.is_empty()) else {
        return true;
    };
    let total = hints.values().sum::<i64>() as f64;
    ratios.iter().any(|(zone, ratio)| {
        let Some(count) = hints.get(zone) else {
            return true;
        };
        let minimum = (total * ratio * MINIMUM_SHARE).ceil() as i64;
        *count < minimum
    })
}

#[cfg(test)]
mod tests;
