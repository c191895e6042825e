//! Informer events → queue keys.
//!
//! | event | keys | when |
//! |---|---|---|
//! | Service add, update, delete | the Service's key | now |
//! | Pod add, update, delete | the Services the change concerns ([`services_for_pod_event`]) | after the batch period |
//! | Endpoints delete | the Endpoints' key (= its Service's) | now |
//!
//! Endpoints adds and updates are not watched: a hand-edited Endpoints
//! object is put right only at the next sync of its Service, as upstream.
//! Upstream (1.35+) hands pod events to a second queue whose workers resolve
//! the Services; ecm resolves them right in the handler, from the Service
//! cache's namespace index, which yields the same keys without the extra
//! queue.

use std::sync::Arc;
use std::time::Duration;

use ecm_informer::{Deleted, EventHandler, Lister, Notification, Selector, handler_fn};
use ecm_types::{ObjectKey, PodProjection, services_for_pod_event};
use ecm_workqueue::RateLimitingQueue;
use k8s_openapi::api::core::v1::{Endpoints, Service};

use crate::stale::StaleTracker;

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

/// Queues the key of a deleted Endpoints object, so that an Endpoints
/// deleted by hand is recreated at once.
pub(crate) struct EndpointsHandler {
    pub(crate) queue: RateLimitingQueue<ObjectKey>,
    pub(crate) stale: Arc<StaleTracker>,
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
    use ecm_informer::Store;
    use ecm_types::fixtures::{pod, service};
    use ecm_workqueue::{QueueConfig, default_controller_rate_limiter};

    fn queue() -> RateLimitingQueue<ObjectKey> {
        RateLimitingQueue::new(QueueConfig::default(), default_controller_rate_limiter())
    }

    async fn drain(queue: &RateLimitingQueue<ObjectKey>) -> Vec<String> {
        let mut keys = Vec::new();
        while !queue.is_empty() {
            let key = queue.get().await.unwrap();
            queue.done(&key);
            keys.push(key.to_string());
        }
        keys.sort();
        keys
    }

    fn services() -> Lister<Service> {
        let store = Store::new();
        for (name, app) in [("a", "a"), ("b", "b")] {
            store.insert(Arc::new(service("ns", name).selector([("app", app)]).build()));
        }
        store.insert(Arc::new(service("ns", "no-selector").build()));
        store.insert(Arc::new(service("other", "a").selector([("app", "a")]).build()));
        Lister::new(store)
    }

    #[tokio::test(start_paused = true)]
    async fn pod_events_queue_matching_services_of_its_namespace_after_the_batch_period() {
        let queue = queue();
        let handler = pod_handler(queue.clone(), services(), Duration::from_secs(1));
        let p = Arc::new(pod("ns", "p").labels([("app", "a")]).ip("10.0.0.1").projection());
        handler.on_add(&p, false);
        assert_eq!(queue.len(), 0, "waits for the batch period");
        tokio::time::sleep(Duration::from_secs(1)).await;
        queue.wait_until(|s| s.queued == 1).await;
        assert_eq!(drain(&queue).await, ["ns/a"]);
    }

    #[tokio::test(start_paused = true)]
    async fn relabelled_pod_queues_old_and_new_services() {
        let queue = queue();
        let handler = pod_handler(queue.clone(), services(), Duration::ZERO);
        let old = Arc::new(pod("ns", "p").labels([("app", "a")]).projection());
        let new = Arc::new(pod("ns", "p").labels([("app", "b")]).resource_version("2").projection());
        handler.on_update(&old, &new);
        assert_eq!(drain(&queue).await, ["ns/a", "ns/b"]);
        handler.on_update(&new, &new);
        assert!(queue.is_empty(), "a resync queues nothing");
    }

    #[tokio::test(start_paused = true)]
    async fn deleted_pod_queues_its_last_services() {
        let queue = queue();
        let handler = pod_handler(queue.clone(), services(), Duration::ZERO);
        let gone = Arc::new(pod("ns", "p").labels([("app", "b")]).projection());
        handler.on_delete(Deleted {
            obj: gone,
            final_state_unknown: true,
        });
        assert_eq!(drain(&queue).await, ["ns/b"]);
    }

    #[tokio::test(start_paused = true)]
    async fn service_and_endpoints_events_queue_their_own_key() {
        let queue = queue();
        let services = service_handler(queue.clone());
        let svc = Arc::new(service("ns", "web").build());
        services.on_add(&svc, true);
        services.on_update(&svc, &svc);
        services.on_delete(Deleted {
            obj: svc,
            final_state_unknown: false,
        });
        let stale = Arc::new(StaleTracker::default());
        stale.created(&ObjectKey::new("ns", "db"));
        let endpoints = EndpointsHandler {
            queue: queue.clone(),
            stale: Arc::clone(&stale),
        };
        let ep = Endpoints {
            metadata: kube::api::ObjectMeta {
                name: Some("db".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            subsets: None,
        };
        endpoints.on_delete(Deleted {
            obj: Arc::new(ep),
            final_state_unknown: false,
        });
        assert_eq!(drain(&queue).await, ["ns/db", "ns/web"]);
        assert!(!stale.create_pending(&ObjectKey::new("ns", "db")));
    }
}
