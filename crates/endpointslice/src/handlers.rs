//! Informer events → queue keys (upstream's `onServiceUpdate`,
//! `onServiceDelete`, pod handlers, `onEndpointSliceAdd/Update/Delete` and
//! the node handlers).
//!
//! | event | keys | when |
//! |---|---|---|
//! | Service add, update, delete | the Service's key | now |
//! | Pod add, update, delete | the Services the change concerns ([`services_for_pod_event`]) | after the batch period |
//! | managed EndpointSlice add or update the tracker did not expect | the slice's Service | after max(1 s, batch period) |
//! | EndpointSlice moved to another Service, or managed-by changed | old and new Service | after max(1 s, batch period) |
//! | unexpected delete of a slice this controller wrote | the slice's Service | after max(1 s, batch period) |
//! | any slice event that brings the cache up to a stale sync's expectations | that Service | now (ecm addition) |
//! | Node add, delete; Ready or zone change | the topology item | now |
//!
//! Upstream (1.35+) hands pod events to a second queue whose workers resolve
//! the Services; ecm resolves them right in the handler, from the Service
//! cache's namespace index, which yields the same keys without the extra
//! queue.

use std::sync::Arc;
use std::time::Duration;

use ecm_informer::{Deleted, EventHandler, Lister, Notification, Selector, handler_fn};
use ecm_types::endpoint_slice::service_name;
use ecm_types::slice_tracker::EndpointSliceTracker;
use ecm_types::wellknown::LABEL_TOPOLOGY_ZONE;
use ecm_types::{ObjectKey, PodProjection, services_for_pod_event};
use ecm_workqueue::RateLimitingQueue;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::hints::topology::ready;
use crate::slice::{managed_by_changed, managed_by_controller, service_key};
use crate::sync::StaleServices;

/// The least time between a slice event and the sync it causes
/// (upstream's `endpointSliceChangeMinSyncDelay`), so that the controller's
/// own writes coming back through the watch are absorbed by one sync.
pub const SLICE_CHANGE_MIN_SYNC_DELAY: Duration = Duration::from_secs(1);

/// The only key of the topology queue.
pub(crate) type TopologyItem = ();

/// Queues the key of every Service that is added, changed or deleted.
pub(crate) fn service_handler(queue: RateLimitingQueue<ObjectKey>) -> impl EventHandler<Service> {
    handler_fn(move |change: Notification<Service>| queue.add(ObjectKey::of(change.object().as_ref())))
}

/// Queues, after the batch period, the Services a pod event concerns
/// ([`services_for_pod_event`]).
pub(crate) fn pod_handler(
    queue: RateLimitingQueue<ObjectKey>,
    services: Lister<Service>,
    batch_period: Duration,
) -> impl EventHandler<PodProjection> {
    handler_fn(move |change: Notification<PodProjection>| {
        let (old, new) = change.before_after();
        let in_namespace = |namespace: &str| services.list(namespace, &Selector::everything());
        for key in services_for_pod_event(old.map(AsRef::as_ref), new.map(AsRef::as_ref), in_namespace) {
            queue.add_after(key, batch_period);
        }
    })
}

/// Queues the Service of a slice whose change this controller did not make
/// itself (the tracker tells), after [`SLICE_CHANGE_MIN_SYNC_DELAY`] or the
/// batch period, whichever is longer.
pub(crate) struct SliceHandler {
    pub(crate) queue: RateLimitingQueue<ObjectKey>,
    pub(crate) tracker: Arc<EndpointSliceTracker>,
    pub(crate) delay: Duration,
    /// Services waiting for this cache to catch up with their writes.
    pub(crate) stale: Arc<StaleServices>,
    /// The cache this handler is fed from (already updated when it runs).
    pub(crate) slices: Lister<EndpointSlice>,
}

impl SliceHandler {
    pub(crate) fn delay(batch_period: Duration) -> Duration {
        batch_period.max(SLICE_CHANGE_MIN_SYNC_DELAY)
    }

    /// Queues the slice's Service at once if its last sync found this cache
    /// stale and the cache has now caught up with every expected write.
    fn wake_if_caught_up(&self, slice: &EndpointSlice) {
        if let Ok(key) = service_key(slice)
            && self.stale.caught_up(&key, &self.tracker, &self.slices)
        {
            tracing::trace!(service = %key, "slice cache caught up, resyncing now");
            self.queue.add(key);
        }
    }

    fn enqueue(&self, slice: &EndpointSlice) {
        match service_key(slice) {
            Ok(key) => self.queue.add_after(key, self.delay),
            Err(error) => tracing::error!(
                slice = %ObjectKey::of(slice),
                %error,
                "cannot map the EndpointSlice to a Service"
            ),
        }
    }
}

impl EventHandler<EndpointSlice> for SliceHandler {
    fn on_add(&self, slice: &Arc<EndpointSlice>, _initial: bool) {
        if managed_by_controller(slice) && self.tracker.should_sync(slice) {
            self.enqueue(slice);
        }
        self.wake_if_caught_up(slice);
    }

    fn on_update(&self, old: &Arc<EndpointSlice>, new: &Arc<EndpointSlice>) {
        // A slice moved to another Service: both Services must be synced.
        if service_name(new) != service_name(old) {
            self.enqueue(new);
            self.enqueue(old);
            return;
        }
        if managed_by_changed(old, new) || (managed_by_controller(new) && self.tracker.should_sync(new)) {
            self.enqueue(new);
        }
        self.wake_if_caught_up(new);
    }

    fn on_delete(&self, deleted: Deleted<EndpointSlice>) {
        let slice = &deleted.obj;
        // A deletion the tracker expected is our own; any other deletion of
        // a slice we wrote must be repaired. Slices we never wrote are
        // ignored, as upstream.
        if managed_by_controller(slice) && self.tracker.has(slice) && !self.tracker.handle_deletion(slice) {
            self.enqueue(slice);
        }
        self.wake_if_caught_up(slice);
    }
}

/// Queues the topology item when the node set or a node's readiness or zone
/// changes (an allocatable-CPU change alone does not, as upstream).
pub(crate) struct NodeHandler {
    pub(crate) queue: RateLimitingQueue<TopologyItem>,
}

impl NodeHandler {
    fn zone(node: &Node) -> Option<&str> {
        node.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_TOPOLOGY_ZONE))
            .map(String::as_str)
    }
}

impl EventHandler<Node> for NodeHandler {
    fn on_add(&self, _node: &Arc<Node>, _initial: bool) {
        self.queue.add(());
    }

    fn on_update(&self, old: &Arc<Node>, new: &Arc<Node>) {
        if ready(old) != ready(new) || Self::zone(old) != Self::zone(new) {
            self.queue.add(());
        }
    }

    fn on_delete(&self, _deleted: Deleted<Node>) {
        self.queue.add(());
    }
}

#[cfg(test)]
mod tests;
