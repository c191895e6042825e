//! Informer events → queue keys.
//!
//! | event | keys | when |
//! |---|---|---|
//! | Service add, update, delete | the Service's key ([`own_key_handler`](ecm_controller::own_key_handler)) | now |
//! | Pod add, update, delete | the Services the change concerns ([`pod_handler`](ecm_controller::pod_handler)) | after the batch period |
//! | Endpoints delete | the Endpoints' key (= its Service's) | now |
//! | Endpoints add, update that brings the cache up to a stale sync's expectations | that key | now (ecm addition) |
//!
//! Other Endpoints adds and updates are not watched: a hand-edited
//! Endpoints object is put right only at the next sync of its Service, as
//! upstream. The wake-up matters when the work queue dropped a key after
//! too many stale-cache failures: it is the only thing that brings the
//! key back once the cache has caught up.

use std::sync::Arc;

use ecm_controller::{ObjectVersions, StaleCacheGuard};
use ecm_informer::{Deleted, EventHandler, ObjectKey};
use ecm_workqueue::RateLimitingQueue;
use k8s_openapi::api::core::v1::Endpoints;

/// Queues the key of a deleted Endpoints object, so that an Endpoints
/// deleted by hand is recreated at once, and forgets what the controller
/// expected of it; queues the key of an added or updated one whose last
/// sync found the cache behind, once the cache has caught up.
pub(crate) struct EndpointsHandler {
    pub(crate) queue: RateLimitingQueue<ObjectKey>,
    pub(crate) stale: Arc<StaleCacheGuard<ObjectVersions>>,
}

impl EndpointsHandler {
    fn wake_if_caught_up(&self, endpoints: &Endpoints) {
        let key = ObjectKey::of(endpoints);
        if self.stale.is_waiting(&key)
            && self
                .stale
                .caught_up(&key, endpoints.metadata.resource_version.as_deref())
        {
            tracing::trace!(service = %key, "endpoints cache caught up, syncing now");
            self.queue.add(key);
        }
    }
}

impl EventHandler<Endpoints> for EndpointsHandler {
    fn on_add(&self, endpoints: &Arc<Endpoints>, _initial: bool) {
        self.wake_if_caught_up(endpoints);
    }

    fn on_update(&self, _old: &Arc<Endpoints>, new: &Arc<Endpoints>) {
        self.wake_if_caught_up(new);
    }

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

    #[tokio::test(start_paused = true)]
    async fn a_waiting_key_is_queued_once_its_endpoints_catch_up() {
        // Chaos seed 10 (run 1): the key was dropped after 15 stale-cache
        // failures and nothing ever queued it again.
        let queue = RateLimitingQueue::new(QueueConfig::default(), default_controller_rate_limiter());
        let stale = Arc::new(StaleCacheGuard::new(Arc::new(ObjectVersions::default())));
        let key = ObjectKey::new("ns", "db");
        stale.expectations().updated(&key, "1", "2");
        stale.begin_read(&key);
        assert!(stale.is_behind(&key, Some("1")));
        let handler = EndpointsHandler {
            queue: queue.clone(),
            stale: Arc::clone(&stale),
        };
        let endpoints = |rv: &str| {
            let mut ep = Endpoints::default();
            ep.metadata.name = Some("db".into());
            ep.metadata.namespace = Some("ns".into());
            ep.metadata.resource_version = Some(rv.into());
            Arc::new(ep)
        };
        handler.on_update(&endpoints("0"), &endpoints("1"));
        assert_eq!(queue.len(), 0, "still behind");
        handler.on_update(&endpoints("1"), &endpoints("2"));
        assert_eq!(queue.get().await, Some(key));
        handler.on_add(&endpoints("3"), false);
        assert_eq!(queue.len(), 0, "nobody waits any more");
    }
}
