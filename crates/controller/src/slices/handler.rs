//! [`SliceHandler`]: EndpointSlice events → owner keys, for a controller
//! that writes slices and records its writes in an
//! [`EndpointSliceTracker`] (upstream's `onEndpointSliceAdd/Update/Delete`
//! of both slice-writing controllers).
//!
//! | event | owners queued |
//! |---|---|
//! | add of a managed slice the tracker did not expect | its owner |
//! | update that changed the service-name label (any manager) | old and new owner |
//! | update that moved the slice to or from this manager, or of a managed slice the tracker did not expect | its owner |
//! | delete of a managed slice the tracker holds a generation for (someone else deleted it) | its owner |
//! | any event after which a waiting owner's cache has caught up (with [`SliceHandler::wake_from`]) | that owner, at once |
//!
//! Queued owners wait [`SliceHandler::delay`]; the controller's own writes
//! coming back through the watch queue nothing, even when they come back
//! before the API server's answers (the tracker holds such events back
//! until the writes are recorded, then judges them).

use std::sync::Arc;
use std::time::Duration;

use ecm_informer::{Deleted, EventHandler, HandlerRegistration, Informer, Lister, ObjectKey};
use ecm_types::endpoint_slice::service_name;
use ecm_workqueue::RateLimitingQueue;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::manager::{SliceManager, owner_key};
use super::tracker::EndpointSliceTracker;
use crate::incremental::ChangeTracker;
use crate::stale::StaleCacheGuard;

/// The slice event handler of a slice-writing controller.
pub struct SliceHandler {
    /// The controller's queue of owner keys.
    pub queue: RateLimitingQueue<ObjectKey>,
    /// Which slices are the controller's.
    pub manager: SliceManager,
    /// The tracker of the controller's own writes, and the owners waiting
    /// for the cache to catch up with them.
    pub guard: Arc<StaleCacheGuard<EndpointSliceTracker>>,
    /// How long a queued owner waits before its sync.
    pub delay: Duration,
    /// When set, the cache this handler is fed from (already updated when
    /// it runs): an owner whose last sync found it behind is queued again,
    /// without delay, as soon as it has caught up. Without it such an owner
    /// waits out the queue's back-off.
    pub wake_from: Option<Lister<EndpointSlice>>,
    /// When set, the controller's incremental-sync tracker: every owner
    /// this handler queues is noted as changed as a whole, so that its next
    /// sync is a full one (see [`ChangeTracker`]).
    pub changes: Option<Arc<ChangeTracker>>,
}

impl SliceHandler {
    /// Registers the manager's index and this handler on the slice
    /// informer.
    pub fn register(self, slices: &Informer<EndpointSlice>) -> HandlerRegistration {
        self.manager.add_index(slices.store());
        self.requeue_held_events();
        slices.add_event_handler(self)
    }

    /// Makes the tracker queue, as this handler would, an owner whose slice
    /// events it held back during a write and then found were not the
    /// controller's own ([`EndpointSliceTracker::on_requeue`]). Done by
    /// [`register`](Self::register).
    pub fn requeue_held_events(&self) {
        let (queue, changes, delay) = (self.queue.clone(), self.changes.clone(), self.delay);
        self.tracker().on_requeue(move |owner| {
            tracing::trace!(%owner, "a slice event held back during the writes was not ours");
            if let Some(changes) = &changes {
                changes.note_service(owner);
            }
            queue.add_after(owner.clone(), delay);
        });
    }

    fn tracker(&self) -> &EndpointSliceTracker {
        self.guard.expectations()
    }

    fn enqueue(&self, slice: &EndpointSlice) {
        match owner_key(slice) {
            Ok(key) => {
                if let Some(changes) = &self.changes {
                    changes.note_service(&key);
                }
                self.queue.add_after(key, self.delay);
            }
            Err(error) => tracing::error!(slice = %error.0, %error, "cannot map the EndpointSlice to its owner"),
        }
    }

    /// Whether a managed slice changed in a way the tracker did not expect.
    fn unexpected(&self, slice: &EndpointSlice) -> bool {
        self.manager.manages(slice) && self.tracker().should_sync(slice)
    }

    fn wake_if_caught_up(&self, slice: &EndpointSlice) {
        let Some(slices) = &self.wake_from else { return };
        let Ok(key) = owner_key(slice) else { return };
        if !self.guard.is_waiting(&key) {
            return;
        }
        let current = self.manager.list(slices, &key);
        if self.guard.caught_up(&key, &current) {
            tracing::trace!(owner = %key, "slice cache caught up, syncing now");
            self.queue.add(key);
        }
    }
}

impl EventHandler<EndpointSlice> for SliceHandler {
    fn on_add(&self, slice: &Arc<EndpointSlice>, _initial: bool) {
        if self.unexpected(slice) {
            self.enqueue(slice);
        }
        self.wake_if_caught_up(slice);
    }

    fn on_update(&self, old: &Arc<EndpointSlice>, new: &Arc<EndpointSlice>) {
        // The generation does not change with labels: a slice moved to
        // another owner concerns both, whoever manages it.
        if service_name(new) != service_name(old) {
            self.enqueue(new);
            self.enqueue(old);
            return;
        }
        if self.manager.manager_changed(old, new) || self.unexpected(new) {
            self.enqueue(new);
        }
        self.wake_if_caught_up(new);
    }

    fn on_delete(&self, deleted: Deleted<EndpointSlice>) {
        let slice = &deleted.obj;
        // A deletion the tracker expected is the controller's own; any other
        // deletion of a slice it wrote must be repaired. Slices it never
        // wrote are left alone, as upstream.
        if self.manager.manages(slice) && self.tracker().has(slice) && !self.tracker().handle_deletion(slice) {
            self.enqueue(slice);
        }
        self.wake_if_caught_up(slice);
    }
}

#[cfg(test)]
mod tests;
