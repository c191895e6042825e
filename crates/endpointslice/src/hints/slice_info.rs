//! [`SliceInfo`]: the slices the hint mechanisms work on, and what they all
//! need of an endpoint.

use ecm_types::endpoint_slice::{endpoints, endpoints_mut};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};

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
    pub(super) fn writable(&mut self) -> impl Iterator<Item = &mut EndpointSlice> {
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
