//! Where the desired endpoints of one port group go: which existing slices
//! are kept, updated or deleted, and which new slices are created
//! (upstream's `reconcileByPortMapping`).
//!
//! The algorithm minimises writes, not slices:
//!
//! 1. Walk the existing slices. Keep each endpoint that is still desired (in
//!    its desired version, so a changed condition is written), drop the
//!    others. A slice left empty is deleted; a slice that changed, or whose
//!    Service labels are stale, is updated; the rest stay unchanged.
//! 2. Top up the slices already being updated, fullest first, up to the
//!    maximum.
//! 3. Put what is left into new slices of the maximum size; a remainder
//!    smaller than the maximum goes into the unchanged slice that ends up
//!    closest to full, but only if it fits whole — it is never split over
//!    existing slices.
//!
//! Upstream leaves several choices to Go's map order; here they are fixed so
//! that one input always gives one output: endpoints are taken from the
//! desired set in [`EndpointIdentity`](ecm_types::endpoint_set::EndpointIdentity)
//! order, existing slices are considered in the order given (the planner
//! sorts them by name), slices of equal size are topped up in that order,
//! and the first of two equally good unchanged slices is filled.

use std::cmp::Reverse;

use ecm_types::IpFamily;
use ecm_types::endpoint_set::EndpointSet;
use ecm_types::endpoint_slice::{endpoints, endpoints_mut, set_endpoints};
use ecm_types::equality::endpoints_equal_beyond_hash;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};

use crate::slice::{new_slice, slice_labels};

/// The outcome for one port group.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Placement<'a> {
    /// Desired endpoints not found in any existing slice.
    pub added: usize,
    /// Existing endpoints no longer desired.
    pub removed: usize,
    /// New slices, in creation order.
    pub to_create: Vec<EndpointSlice>,
    /// Changed copies of existing slices.
    pub to_update: Vec<EndpointSlice>,
    /// Existing slices left without endpoints.
    pub to_delete: Vec<&'a EndpointSlice>,
    /// Existing slices that need no write.
    pub unchanged: Vec<&'a EndpointSlice>,
}

impl Placement<'_> {
    /// The endpoints of the port group once placed: those of the slices
    /// created, updated and left unchanged (every desired endpoint, once).
    pub(crate) fn endpoint_count(&self) -> usize {
        let written = self.to_create.iter().chain(&self.to_update).map(endpoint_count);
        written.chain(self.unchanged.iter().map(|s| endpoint_count(s))).sum()
    }
}

fn endpoint_count(slice: &EndpointSlice) -> usize {
    endpoints(slice).len()
}

/// A copy of `slice` with new endpoints, sharing nothing with the cached
/// object.
fn copy_with_endpoints(slice: &EndpointSlice, new_endpoints: Vec<Endpoint>) -> EndpointSlice {
    let mut copy = EndpointSlice {
        metadata: slice.metadata.clone(),
        address_type: slice.address_type.clone(),
        ports: slice.ports.clone(),
        ..EndpointSlice::default()
    };
    set_endpoints(&mut copy, new_endpoints);
    copy
}

/// Moves endpoints from `desired` into `slice` until it holds `max`.
fn fill(slice: &mut EndpointSlice, desired: &mut EndpointSet, max: usize) {
    let list = endpoints_mut(slice);
    while list.len() < max {
        let Some(endpoint) = desired.pop_first() else {
            break;
        };
        list.push(endpoint);
    }
}

/// The unchanged slice that would be closest to full after receiving
/// `count` endpoints, if any can take them all (upstream's `getSliceToFill`).
fn slice_to_fill(unchanged: &[&EndpointSlice], count: usize, max: usize) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (index, slice) in unchanged.iter().enumerate() {
        let Some(room_left) = max.checked_sub(count + endpoint_count(slice)) else {
            continue;
        };
        if best.is_none_or(|(_, closest)| room_left < closest) {
            best = Some((index, room_left));
            if room_left == 0 {
                break;
            }
        }
    }
    best.map(|(index, _)| index)
}

/// Places the `desired` endpoints of one port group (`ports`, of `family`)
/// over the group's `existing` slices, with at most `max` endpoints per
/// slice it fills. See the module documentation for the rules.
///
/// An existing endpoint for which `vouched` holds is kept as it is without
/// a look-up in `desired`: the caller vouches that it is desired as it is
/// and that `desired` does not hold it (the changed-pods plan passes only
/// the changed pods' endpoints, and vouches for every other pod's). A
/// slice of vouched endpoints only is not copied.
pub(crate) fn place<'a>(
    svc: &Service,
    family: IpFamily,
    ports: &[EndpointPort],
    existing: &[&'a EndpointSlice],
    mut desired: EndpointSet,
    max: usize,
    vouched: &dyn Fn(&Endpoint) -> bool,
) -> Placement<'a> {
    let mut placement = Placement::default();

    // 1. Existing slices: keep, update or delete.
    for &slice in existing {
        let (labels, labels_changed) = slice_labels(slice.metadata.labels.as_ref(), svc);
        let before = endpoint_count(slice);
        let (kept, endpoint_changed) = if endpoints(slice).iter().all(vouched) {
            (None, false)
        } else {
            let mut kept = Vec::new();
            let mut endpoint_changed = false;
            for current in endpoints(slice) {
                if vouched(current) {
                    kept.push(current.clone());
                } else if let Some(wanted) = desired.remove(current) {
                    endpoint_changed |= !endpoints_equal_beyond_hash(&wanted, current);
                    kept.push(wanted);
                }
            }
            (Some(kept), endpoint_changed)
        };
        if let Some(kept) = kept.filter(|kept| endpoint_changed || kept.len() != before) {
            placement.removed += before - kept.len();
            if kept.is_empty() {
                placement.to_delete.push(slice);
            } else {
                let mut copy = copy_with_endpoints(slice, kept);
                copy.metadata.labels = Some(labels);
                placement.to_update.push(copy);
            }
        } else if labels_changed {
            let mut copy = copy_with_endpoints(slice, endpoints(slice).to_vec());
            copy.metadata.labels = Some(labels);
            placement.to_update.push(copy);
        } else {
            placement.unchanged.push(slice);
        }
    }
    placement.added = desired.len();

    // 2. Top up the slices being updated anyway, fullest first.
    if !desired.is_empty() && !placement.to_update.is_empty() {
        let mut order: Vec<usize> = (0..placement.to_update.len()).collect();
        order.sort_by_key(|&i| Reverse(endpoint_count(&placement.to_update[i])));
        for i in order {
            fill(&mut placement.to_update[i], &mut desired, max);
        }
    }

    // 3. New slices, or one unchanged slice that takes the whole remainder.
    while !desired.is_empty() {
        let existing_fit = if desired.len() < max {
            slice_to_fill(&placement.unchanged, desired.len(), max)
        } else {
            None
        };
        if let Some(index) = existing_fit {
            // Filled as is: labels are left as they were (upstream does not
            // recompute them on this path).
            let slice = placement.unchanged.remove(index);
            let mut copy = copy_with_endpoints(slice, endpoints(slice).to_vec());
            fill(&mut copy, &mut desired, max);
            placement.to_update.push(copy);
        } else {
            let mut slice = new_slice(svc, family, ports);
            fill(&mut slice, &mut desired, max);
            placement.to_create.push(slice);
        }
    }
    placement
}

#[cfg(test)]
mod tests;
