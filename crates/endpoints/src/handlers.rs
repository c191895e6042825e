//! Informer events → queue keys.
//!
//! | event | keys | when |
//! |---|---|---|
//! | Service add, update, delete | the Service's key ([`own_key_handler`](ecm_controller::own_key_handler)) | now |
//! | Pod add, update, delete | the Services the change concerns ([`pod_handler`](ecm_controller::pod_handler)) | after the batch period |
//! | Endpoints delete | the Endpoints' key (= its Service's) | now |
//!
//! Endpoints adds and updates are not watched: a hand-edited Endpoints
//! object is put right only at the next sync of its Service, as upstream.

use std::sync::Arc;

use ecm_controller::{ObjectVersions, StaleCacheGuard};
use ecm_informer::{Deleted, EventHandler, ObjectKey};
use ecm_workqueue::RateLimitingQueue;
use k8s_openapi::api::core::v1::Endpoints;

/// Queues the key of a deleted Endpoints object, so that an Endpoints
/// deleted by hand is recreated at once, and forgets what the controller
/// expected of it.
pub(crate) struct EndpointsHandler {
    pub(crate) queue: RateLimitingQueue<ObjectKey>,
    pub(crate) stale: Arc<StaleCacheGuard<ObjectVersions>>,
}

impl EventHandler<Endpoints> for EndpointsHandler {
    fn on_delete(&self, deleted: Deleted<Endpoints>) {
        let key = ObjectKey::of(deleted.obj.as_ref());
        self.stale.forget(&key);
        self.queue.add(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecm_workqueue::{QueueConfig, default_controller_rate_limiter};

    #[tokio::test(start_paused = true)]
    async fn deleted_endpoints_queue_their_key_and_end_expectations() {
        let queue = RateLimitingQueue::new(QueueConfig::default(), default_controller_rate_limiter());
        let stale = Arc::new(StaleCacheGuard::new(Arc::new(ObjectVersions::default())));
        stale.expectations().created(&ObjectKey::new("ns", "db"));
        let handler = EndpointsHandler {
            queue: queue.clone(),
            stale: Arc::clone(&stale),
        };
        let mut ep = Endpoints::default();
        ep.metadata.name = Some("db".into());
        ep.metadata.namespace = Some("ns".into());
        handler.on_delete(Deleted {
            obj: Arc::new(ep),
            final_state_unknown: false,
        });
        assert_eq!(queue.get().await, Some(ObjectKey::new("ns", "db")));
        assert!(!stale.expectations().create_pending(&ObjectKey::new("ns", "db")));
    }
}
