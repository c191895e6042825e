//! Informer events → queue keys (upstream's `onEndpointsAdd/Update/Delete`,
//! `onServiceAdd/Update/Delete`, `onEndpointSliceAdd/Update/Delete`).
//!
//! Every key names an Endpoints object (the same `namespace/name` as its
//! Service).
//!
//! | event | queued when | delay |
//! |---|---|---|
//! | Endpoints add | it may be mirrored ([`should_mirror`]), unless its Service has a selector and nothing mirrored from it is cached | none |
//! | Endpoints update | the old **or** the new object may be mirrored, with the same exception | none |
//! | Endpoints delete | its last known state may be mirrored | none |
//! | Service add, delete | it has no selector | none |
//! | Service update | it gained or lost its selector | none |
//! | EndpointSlice add | managed by mirroring, and the tracker did not expect it | batch period |
//! | EndpointSlice update | service-name label changed (old and new names, any manager); managed-by moved to or from mirroring; or managed by mirroring and not expected | batch period |
//! | EndpointSlice delete | managed by mirroring, tracked, and not deleted by this controller | batch period |
//!
//! The slice events are `ecm-controller`'s shared
//! [`SliceHandler`](ecm_controller::slices::SliceHandler), as the
//! EndpointSlice controller registers it (without its wake-up).
//!
//! An empty selector counts as none, as the API server stores `{}` as absent.

use std::sync::Arc;

use ecm_informer::{Deleted, EventHandler, Lister, ObjectKey};
use ecm_workqueue::RateLimitingQueue;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::slice::{has_selector, should_mirror};
use crate::sync::MANAGER;

/// Queues Endpoints objects that are, or were, mirrorable.
pub(crate) struct EndpointsHandler {
    pub(crate) queue: RateLimitingQueue<ObjectKey>,
    /// The Service cache: an Endpoints object of a Service with a selector
    /// is not queued when nothing was mirrored from it.
    pub(crate) services: Lister<Service>,
    /// The slice cache, with [`MANAGER`]'s index.
    pub(crate) slices: Lister<EndpointSlice>,
}

impl EndpointsHandler {
    fn queue(&self, endpoints: &Endpoints) {
        let key = ObjectKey::of(endpoints);
        if self.nothing_to_do(&key) {
            return;
        }
        self.queue.add(key);
    }

    /// Whether a sync of `key` would find nothing to do: its Service has a
    /// selector (the sync only deletes what was mirrored) and nothing
    /// mirrored from it is cached. Upstream queues it anyway; skipping saves
    /// a queue round and a sync on every change of every Endpoints object
    /// the Endpoints controller writes.
    fn nothing_to_do(&self, key: &ObjectKey) -> bool {
        self.services
            .get(key.namespace(), key.name())
            .is_some_and(|svc| has_selector(&svc))
            && MANAGER.list(&self.slices, key).is_empty()
    }
}

impl EventHandler<Endpoints> for EndpointsHandler {
    fn on_add(&self, endpoints: &Arc<Endpoints>, _initial: bool) {
        if should_mirror(endpoints) {
            self.queue(endpoints);
        }
    }

    fn on_update(&self, old: &Arc<Endpoints>, new: &Arc<Endpoints>) {
        if should_mirror(old) || should_mirror(new) {
            self.queue(new);
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

#[cfg(test)]
mod tests;
