//! The whole reconcile of one Endpoints object as a pure function: which
//! mirrored slices to create, update and delete (upstream's `reconcile`,
//! `reconcileByPortMapping`, `totalChanges`, `recycleSlices` and the
//! create-skipping rule of `finalize`).
//!
//! For every desired group (address type × repacked subset's port list):
//! - no desired endpoint: every existing slice of the group is deleted;
//! - no existing slice: one slice is created with all desired endpoints;
//! - otherwise the first existing slice (by name) is kept and the others are
//!   deleted; the kept slice is rewritten in place (an update keeping its
//!   name) unless its endpoints, labels, annotations and owner already match.
//!
//! Existing slices of groups no longer desired are deleted. Then, per
//! address type, each create is paired with a delete and becomes an update
//! of the slice that would have been deleted (recycling). Finally, creates
//! are dropped when the Endpoints is being deleted.
//!
//! Upstream picks "the first" slice in lister order and recycles in Go map
//! order; here both are fixed (names, then group order), so a run is
//! reproducible. Upstream's recycling can also pick the wrong create when
//! both families have creates (it matches unnamed slices by name); this
//! implementation pairs them correctly.

use std::collections::BTreeMap;

use ecm_types::endpoint_set::EndpointSet;
use ecm_types::endpoint_slice::endpoints as slice_endpoints;
use ecm_types::equality::endpoints_equal_beyond_hash;
use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::desired::{SliceKey, desired};
use crate::metrics::EfficiencyInfo;
use crate::slice::{annotations_match, labels_match, new_slice, owned_by_previous_incarnation};

/// Endpoint changes a reconcile makes (upstream's `totalsByAction`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Desired endpoints not present in the kept slices.
    pub added: usize,
    /// Present endpoints whose fields beyond their identity differ.
    pub updated: usize,
    /// Present endpoints not desired (in kept slices, and in slices of
    /// groups that have no desired endpoint).
    pub removed: usize,
}

impl Totals {
    fn add(&mut self, other: Totals) {
        self.added += other.added;
        self.updated += other.updated;
        self.removed += other.removed;
    }
}

/// What one reconcile writes, and what it found along the way.
#[derive(Clone, Debug, Default)]
pub struct Plan<'a> {
    /// New slices (with `generateName`), in group order.
    pub to_create: Vec<EndpointSlice>,
    /// Full replacements of existing slices (named, no resourceVersion).
    pub to_update: Vec<EndpointSlice>,
    /// Existing slices to delete.
    pub to_delete: Vec<&'a EndpointSlice>,
    /// Existing slices that already match and are kept as they are.
    pub unchanged: Vec<&'a EndpointSlice>,
    /// Endpoint changes, for the per-sync histograms.
    pub totals: Totals,
    /// Addresses whose IP does not parse.
    pub invalid_addresses: usize,
    /// Addresses not mirrored (invalid ones included).
    pub addresses_skipped: usize,
    /// Per desired group, its endpoints and slices, for the gauges.
    pub efficiency: Vec<EfficiencyInfo>,
}

impl Plan<'_> {
    /// Whether the plan writes nothing.
    pub fn is_noop(&self) -> bool {
        self.to_create.is_empty() && self.to_update.is_empty() && self.to_delete.is_empty()
    }
}

/// Plans the mirrored slices of `endpoints` given `existing`, the slices
/// this controller mirrored for it, with at most `max_endpoints_per_subset`
/// endpoints per repacked subset (and slice).
pub fn plan<'a>(
    endpoints: &Endpoints,
    existing: impl IntoIterator<Item = &'a EndpointSlice>,
    max_endpoints_per_subset: usize,
) -> Plan<'a> {
    let wanted = desired(endpoints, max_endpoints_per_subset);
    let mut existing_by_key: BTreeMap<SliceKey, Vec<&'a EndpointSlice>> = BTreeMap::new();
    for slice in existing {
        existing_by_key.entry(SliceKey::of(slice)).or_default().push(slice);
    }
    for slices in existing_by_key.values_mut() {
        slices.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    }

    let mut plan = Plan {
        invalid_addresses: wanted.invalid_addresses,
        addresses_skipped: wanted.addresses_skipped,
        ..Plan::default()
    };
    for (key, group) in wanted.groups {
        let slices = existing_by_key.remove(&key).unwrap_or_default();
        let desired_count = group.endpoints.len();
        let (creates, deletes) = (plan.to_create.len(), plan.to_delete.len());
        plan_group(
            &mut plan,
            endpoints,
            &key,
            &group.ports,
            group.endpoints,
            &slices,
            max_endpoints_per_subset,
        );
        let created = plan.to_create.len() - creates;
        let deleted = plan.to_delete.len() - deletes;
        plan.efficiency.push(EfficiencyInfo {
            endpoints: desired_count,
            slices: slices.len() + created - deleted,
        });
    }
    // Groups no longer desired (ports or family gone, or an address type
    // this controller never writes).
    plan.to_delete.extend(existing_by_key.into_values().flatten());

    recycle(&mut plan);
    if endpoints.metadata.deletion_timestamp.is_some() {
        plan.to_create.clear();
    }
    plan
}

/// Plans one desired group against its existing slices (sorted by name).
fn plan_group<'a>(
    plan: &mut Plan<'a>,
    endpoints: &Endpoints,
    key: &SliceKey,
    ports: &[k8s_openapi::api::discovery::v1::EndpointPort],
    mut wanted: EndpointSet,
    slices: &[&'a EndpointSlice],
    max_endpoints_per_subset: usize,
) {
    if wanted.is_empty() {
        plan.totals.removed += slices.iter().map(|s| slice_endpoints(s).len()).sum::<usize>();
        plan.to_delete.extend_from_slice(slices);
        return;
    }
    let name = match slices.split_first() {
        None => {
            plan.totals.added += wanted.len();
            None
        }
        Some((first, rest)) => {
            plan.to_delete.extend_from_slice(rest);
            let (totals, changed) = total_changes(first, &wanted);
            plan.totals.add(totals);
            if !changed
                && labels_match(endpoints, first)
                && annotations_match(endpoints, first)
                && !owned_by_previous_incarnation(endpoints, first)
            {
                plan.unchanged.push(first);
                return;
            }
            first.metadata.name.as_deref()
        }
    };
    let mut items = Vec::with_capacity(wanted.len().min(max_endpoints_per_subset));
    while items.len() < max_endpoints_per_subset {
        let Some(endpoint) = wanted.pop_first() else { break };
        items.push(endpoint);
    }
    let slice = new_slice(endpoints, &key.address_type, ports, name, items);
    if name.is_some() {
        plan.to_update.push(slice);
    } else {
        plan.to_create.push(slice);
    }
}

/// The endpoint changes needed for `existing` to hold exactly `wanted`
/// (upstream's `totalChanges`), and whether there is any change at all.
///
/// An existing endpoint whose identity is not wanted is removed; one whose
/// identity is wanted but whose other fields differ is updated; wanted
/// endpoints not found are added. A slice listing one identity twice also
/// counts as changed (upstream's count of added endpoints goes negative
/// there).
pub(crate) fn total_changes(existing: &EndpointSlice, wanted: &EndpointSet) -> (Totals, bool) {
    let mut totals = Totals::default();
    let mut matches = 0;
    for endpoint in slice_endpoints(existing) {
        match wanted.get(endpoint) {
            None => totals.removed += 1,
            Some(want) => {
                matches += 1;
                if !endpoints_equal_beyond_hash(want, endpoint) {
                    totals.updated += 1;
                }
            }
        }
    }
    totals.added = wanted.len().saturating_sub(matches);
    let changed = totals != Totals::default() || matches > wanted.len();
    (totals, changed)
}

/// Turns, per address type, each create paired with a delete into an update
/// of the slice that would have been deleted (upstream's `recycleSlices`).
fn recycle(plan: &mut Plan<'_>) {
    let creates = std::mem::take(&mut plan.to_create);
    for mut slice in creates {
        let reusable = plan.to_delete.iter().position(|d| d.address_type == slice.address_type);
        match reusable {
            Some(index) => {
                let old = plan.to_delete.remove(index);
                slice.metadata.generate_name = None;
                slice.metadata.name.clone_from(&old.metadata.name);
                plan.to_update.push(slice);
            }
            None => plan.to_create.push(slice),
        }
    }
}

#[cfg(test)]
mod tests;
