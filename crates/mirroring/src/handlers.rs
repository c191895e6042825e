//! Informer events → queue keys (upstream's `onEndpointsAdd/Update/Delete`,
//! `onServiceAdd/Update/Delete`, `onEndpointSliceAdd/Update/Delete`).
//!
//! Every key names an Endpoints object (the same `namespace/name` as its
//! Service).
//!
//! | event | queued when | delay |
//! |---|---|---|
//! | Endpoints add | it may be mirrored ([`should_mirror`]) | none |
//! | Endpoints update | the old **or** the new object may be mirrored | none |
//! | Endpoints delete | its last known state may be mirrored | none |
//! | Service add, delete | it has no selector | none |
//! | Service update | it gained or lost its selector | none |
//! | EndpointSlice add | managed by mirroring, and the tracker did not expect it | batch period |
//! | EndpointSlice update | service-name label changed (old and new names, any manager); managed-by moved to or from mirroring; or managed by mirroring and not expected | batch period |
//! | EndpointSlice delete | managed by mirroring, tracked, and not deleted by this controller | batch period |
//!
//! An empty selector counts as none, as the API server stores `{}` as absent.

use std::sync::Arc;
use std::time::Duration;

use ecm_informer::{Deleted, EventHandler};
use ecm_types::ObjectKey;
use ecm_types::endpoint_slice::service_name;
use ecm_types::slice_tracker::EndpointSliceTracker;
use ecm_workqueue::RateLimitingQueue;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::slice::{endpoints_key, has_selector, managed_by_changed, managed_by_controller, should_mirror};

/// Queues Endpoints objects that are, or were, mirrorable.
pub(crate) struct EndpointsHandler {
    pub(crate) queue: RateLimitingQueue<ObjectKey>,
}

impl EventHandler<Endpoints> for EndpointsHandler {
    fn on_add(&self, endpoints: &Arc<Endpoints>, _initial: bool) {
        if should_mirror(endpoints) {
            self.queue.add(ObjectKey::of(endpoints.as_ref()));
        }
    }

    fn on_update(&self, old: &Arc<Endpoints>, new: &Arc<Endpoints>) {
        if should_mirror(old) || should_mirror(new) {
            self.queue.add(ObjectKey::of(new.as_ref()));
        }
    }

    fn on_delete(&self, deleted: Deleted<Endpoints>) {
        if should_mirror(&deleted.obj) {
            self.queue.add(ObjectKey::of(deleted.obj.as_ref()));
        }
    }
}

/// Queues the Endpoints of selector-less Services, and of Services whose
/// selector came or went.
pub(crate) struct ServiceHandler {
    pub(crate) queue: RateLimitingQueue<ObjectKey>,
}

impl EventHandler<Service> for ServiceHandler {
    fn on_add(&self, service: &Arc<Service>, _initial: bool) {
        if !has_selector(service) {
            self.queue.add(ObjectKey::of(service.as_ref()));
        }
    }

    fn on_update(&self, old: &Arc<Service>, new: &Arc<Service>) {
        if has_selector(old) != has_selector(new) {
            self.queue.add(ObjectKey::of(new.as_ref()));
        }
    }

    fn on_delete(&self, deleted: Deleted<Service>) {
        if !has_selector(&deleted.obj) {
            self.queue.add(ObjectKey::of(deleted.obj.as_ref()));
        }
    }
}

/// Queues, after the batch period, the Endpoints of a mirrored slice whose
/// change this controller did not make itself (the tracker tells).
pub(crate) struct SliceHandler {
    pub(crate) queue: RateLimitingQueue<ObjectKey>,
    pub(crate) tracker: Arc<EndpointSliceTracker>,
    pub(crate) batch_period: Duration,
}

impl SliceHandler {
    fn enqueue(&self, slice: &EndpointSlice) {
        match endpoints_key(slice) {
            Ok(key) => self.queue.add_after(key, self.batch_period),
            Err(error) => tracing::error!(%error, "cannot map the EndpointSlice to an Endpoints object"),
        }
    }
}

impl EventHandler<EndpointSlice> for SliceHandler {
    fn on_add(&self, slice: &Arc<EndpointSlice>, _initial: bool) {
        if managed_by_controller(slice) && self.tracker.should_sync(slice) {
            self.enqueue(slice);
        }
    }

    fn on_update(&self, old: &Arc<EndpointSlice>, new: &Arc<EndpointSlice>) {
        // The generation does not change with labels; a relabelled slice
        // concerns both names, whoever manages it.
        if service_name(new).unwrap_or_default() != service_name(old).unwrap_or_default() {
            self.enqueue(new);
            self.enqueue(old);
            return;
        }
        if managed_by_changed(old, new) || (managed_by_controller(new) && self.tracker.should_sync(new)) {
            self.enqueue(new);
        }
    }

    fn on_delete(&self, deleted: Deleted<EndpointSlice>) {
        let slice = &deleted.obj;
        // A deletion the tracker expected is our own; someone else deleting
        // a slice we wrote gets it recreated.
        if managed_by_controller(slice) && self.tracker.has(slice) && !self.tracker.handle_deletion(slice) {
            self.enqueue(slice);
        }
    }
}

#[cfg(test)]
mod tests;
