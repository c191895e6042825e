//! Informer events → queue keys (upstream's `onServiceUpdate`,
//! `onServiceDelete`, pod handlers, `onEndpointSliceAdd/Update/Delete` and
//! the node handlers).
//!
//! | event | keys | when | handler |
//! |---|---|---|---|
//! | Service add, update, delete | the Service's key | now | [`own_key_handler`](ecm_controller::own_key_handler) |
//! | Pod add, update, delete | the Services the change concerns | after the batch period | [`pod_handler`](ecm_controller::pod_handler) |
//! | managed EndpointSlice add or update the tracker did not expect | the slice's Service | after [`slice_delay`] | [`SliceHandler`](ecm_controller::slices::SliceHandler) |
//! | EndpointSlice moved to another Service, or managed-by changed | old and new Service | after [`slice_delay`] | same |
//! | unexpected delete of a slice this controller wrote | the slice's Service | after [`slice_delay`] | same |
//! | any slice event that brings the cache up to a stale sync's expectations | that Service | now (ecm addition) | same, with `wake_from` |
//! | Node add, delete; Ready or zone change | the topology item | now | [`NodeHandler`] |

use std::sync::Arc;
use std::time::Duration;

use ecm_controller::ChangeTracker;
use ecm_informer::{Deleted, EventHandler};
use ecm_types::wellknown::LABEL_TOPOLOGY_ZONE;
use ecm_workqueue::RateLimitingQueue;
use k8s_openapi::api::core::v1::Node;

use crate::hints::topology::ready;

/// The least time between a slice event and the sync it causes
/// (upstream's `endpointSliceChangeMinSyncDelay`), so that the controller's
/// own writes coming back through the watch are absorbed by one sync.
pub const SLICE_CHANGE_MIN_SYNC_DELAY: Duration = Duration::from_secs(1);

/// The only key of the topology queue.
pub(crate) type TopologyItem = ();

/// How long a slice-triggered sync waits: the batch period, but at least
/// [`SLICE_CHANGE_MIN_SYNC_DELAY`].
pub(crate) fn slice_delay(batch_period: Duration) -> Duration {
    batch_period.max(SLICE_CHANGE_MIN_SYNC_DELAY)
}

/// Queues the topology item when the node set or a node's readiness or zone
/// changes (an allocatable-CPU change alone does not, as upstream).
pub(crate) struct NodeHandler {
    pub(crate) queue: RateLimitingQueue<TopologyItem>,
    /// The incremental-sync tracker, told of every change that can change
    /// an endpoint (a node added or deleted, a zone changed).
    pub(crate) changes: Option<Arc<ChangeTracker>>,
}

impl NodeHandler {
    fn note_all(&self) {
        if let Some(changes) = &self.changes {
            changes.note_all();
        }
    }

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
        self.note_all();
        self.queue.add(());
    }

    fn on_update(&self, old: &Arc<Node>, new: &Arc<Node>) {
        if Self::zone(old) != Self::zone(new) {
            self.note_all();
        }
        if ready(old) != ready(new) || Self::zone(old) != Self::zone(new) {
            self.queue.add(());
        }
    }

    fn on_delete(&self, _deleted: Deleted<Node>) {
        self.note_all();
        self.queue.add(());
    }
}

#[cfg(test)]
mod tests;
