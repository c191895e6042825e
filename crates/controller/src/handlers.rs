//! Event handlers more than one controller registers.
//!
//! | handler | event | keys | when |
//! |---|---|---|---|
//! | [`own_key_handler`] | add, update, delete of any object | the object's own key | now |
//! | [`pod_handler`] | Pod add, update, delete | the Services the change concerns ([`registered_services_for_pod_event`]) | after the batch period |
//! | [`service_selector_handler`] | Service add, update, delete | none: keeps a [`SelectorRegistry`] of Service selectors | now |
//!
//! The Endpoints and EndpointSlice controllers register all three (the
//! first and the last for Services, the registry's before any other).
//! Upstream (1.35+) hands pod events to a second queue whose workers
//! resolve the Services by checking every Service of the namespace; here
//! they are resolved right in the handler, from the registry of Service
//! selectors, which yields the same keys without the extra queue and in
//! proportion to the Services that may match.
//!
//! Each controller keeps its own registry, fed by its own handler on the
//! shared Service informer: its pod handler then never sees a registry
//! ahead of or behind what that controller's own Service handler has
//! queued, a controller built alone (tests, another program) needs nothing
//! more, and the cost of a second copy is one selector per selecting
//! Service — small beside the pod cache.

use std::sync::Arc;
use std::time::Duration;

use ecm_informer::{EventHandler, Informer, Notification, ObjectKey, SelectorRegistry, handler_fn};
use ecm_types::PodProjection;
use ecm_workqueue::RateLimitingQueue;
use k8s_openapi::api::core::v1::Service;
use kube::Resource;

use serde::de::DeserializeOwned;

use crate::core::ControllerCore;
use crate::incremental::ChangeTracker;
use crate::pod_services::{registered_services_for_pod_event, service_selector};

/// Queues the key of every object that is added, changed or deleted.
pub fn own_key_handler<S: Resource + Send + Sync + 'static>(
    queue: RateLimitingQueue<ObjectKey>,
) -> impl EventHandler<S> {
    handler_fn(move |change: Notification<S>| queue.add(ObjectKey::of(change.object().as_ref())))
}

/// Queues, after `batch_period`, the Services a pod event concerns
/// ([`registered_services_for_pod_event`]), looked up in `services`, a
/// registry kept by a [`service_selector_handler`]. With `changes`, first
/// notes the pod as changed for each of them ([`ChangeTracker::note_pod`]).
pub fn pod_handler(
    queue: RateLimitingQueue<ObjectKey>,
    services: SelectorRegistry,
    batch_period: Duration,
    changes: Option<Arc<ChangeTracker>>,
) -> impl EventHandler<PodProjection> {
    handler_fn(move |change: Notification<PodProjection>| {
        let (old, new) = change.before_after();
        let name = change.object().name().to_owned();
        for key in registered_services_for_pod_event(old.map(AsRef::as_ref), new.map(AsRef::as_ref), &services) {
            if let Some(changes) = &changes {
                changes.note_pod(&key, &name);
            }
            queue.add_after(key, batch_period);
        }
    })
}

/// Keeps `registry` in step with a Service informer: each Service's
/// [`service_selector`] registered under its key, Services without a
/// selector and deleted ones unregistered. Register it on the Service
/// informer before the handlers whose keys lead to a registry lookup.
pub fn service_selector_handler(registry: &SelectorRegistry) -> impl EventHandler<Service> + use<> {
    registry.handler(service_selector)
}

/// Registers on `core` what the Endpoints and EndpointSlice controllers
/// watch of Services and pods, in this order: the Services' selectors into
/// a registry of their own ([`service_selector_handler`]), each Service's
/// own key ([`own_key_handler`]), and the Services a pod event concerns,
/// after `batch_period` ([`pod_handler`]). The registry is updated before a
/// Service's key is queued, so the pod handler never lags the Services the
/// controller has seen.
///
/// With `changes`, the handlers also note what changed for the controller's
/// incremental syncs: a pod event the pod, a Service event the whole
/// Service (see [`ChangeTracker`]).
pub fn watch_services_and_pods<P>(
    core: &ControllerCore<ObjectKey>,
    services: &Informer<Service>,
    pods: &Informer<P, PodProjection>,
    batch_period: Duration,
    changes: Option<&Arc<ChangeTracker>>,
) where
    P: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let queue = core.queue();
    let selectors = SelectorRegistry::new();
    core.register(services.add_event_handler(service_selector_handler(&selectors)));
    match changes {
        Some(changes) => {
            let (queue, changes) = (queue.clone(), Arc::clone(changes));
            core.register(
                services.add_event_handler(handler_fn(move |change: Notification<Service>| {
                    let key = ObjectKey::of(change.object().as_ref());
                    changes.note_service(&key);
                    queue.add(key);
                })),
            );
        }
        None => core.register(services.add_event_handler(own_key_handler(queue.clone()))),
    }
    core.register(pods.add_event_handler(pod_handler(queue.clone(), selectors, batch_period, changes.cloned())));
}

#[cfg(test)]
mod tests {
    use super::*;

    use ecm_informer::Deleted;
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

    /// A registry fed through the Service handler, as the controllers feed it.
    fn services() -> SelectorRegistry {
        let registry = SelectorRegistry::new();
        let handler = service_selector_handler(&registry);
        for (name, app) in [("a", "a"), ("b", "b"), ("gone", "a")] {
            handler.on_add(&Arc::new(service("ns", name).selector([("app", app)]).build()), true);
        }
        handler.on_add(&Arc::new(service("ns", "no-selector").build()), true);
        handler.on_add(&Arc::new(service("other", "a").selector([("app", "a")]).build()), true);
        // A Service deleted, and one whose selector was removed, select nothing.
        handler.on_delete(Deleted {
            obj: Arc::new(service("ns", "gone").build()),
            final_state_unknown: false,
        });
        let had = Arc::new(service("ns", "dropped").selector([("app", "a")]).build());
        handler.on_add(&had, false);
        handler.on_update(&had, &Arc::new(service("ns", "dropped").build()));
        registry
    }

    #[tokio::test(start_paused = true)]
    async fn pod_events_queue_matching_services_of_its_namespace_after_the_batch_period() {
        let queue = queue();
        let handler = pod_handler(queue.clone(), services(), Duration::from_secs(1), None);
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
        let handler = pod_handler(queue.clone(), services(), Duration::ZERO, None);
        let old = Arc::new(pod("ns", "p").labels([("app", "a")]).projection());
        let new = Arc::new(pod("ns", "p").labels([("app", "b")]).resource_version("2").projection());
        handler.on_update(&old, &new);
        assert_eq!(drain(&queue).await, ["ns/a", "ns/b"]);
        handler.on_update(&new, &new);
        assert!(queue.is_empty(), "a resync queues nothing");
    }

    #[tokio::test(start_paused = true)]
    async fn pod_events_note_the_pod_for_every_service_they_queue() {
        use crate::incremental::SyncScope;
        use ecm_informer::{Lister, Store};

        let (queue, changes) = (queue(), Arc::new(ChangeTracker::new()));
        let handler = pod_handler(queue.clone(), services(), Duration::ZERO, Some(Arc::clone(&changes)));
        let pods = Store::new();
        let (pods, svcs) = (
            Lister::new(pods),
            [("a", "a"), ("b", "b")].map(|(name, app)| Arc::new(service("ns", name).selector([("app", app)]).build())),
        );
        for svc in &svcs {
            let key = ObjectKey::of(svc.as_ref());
            changes.succeeded(&key, svc, &changes.begin(&key, svc, &pods));
        }
        let old = Arc::new(pod("ns", "p").labels([("app", "a")]).projection());
        let new = Arc::new(pod("ns", "p").labels([("app", "b")]).resource_version("2").projection());
        handler.on_update(&old, &new);
        assert_eq!(drain(&queue).await, ["ns/a", "ns/b"]);
        for svc in &svcs {
            let SyncScope::Changed(changed) = changes.begin(&ObjectKey::of(svc.as_ref()), svc, &pods) else {
                panic!("a pod change keeps the scope to the pod");
            };
            assert_eq!(changed.names.iter().collect::<Vec<_>>(), ["p"]);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn deleted_pod_queues_its_last_services() {
        let queue = queue();
        let handler = pod_handler(queue.clone(), services(), Duration::ZERO, None);
        let gone = Arc::new(pod("ns", "p").labels([("app", "b")]).projection());
        handler.on_delete(Deleted {
            obj: gone,
            final_state_unknown: true,
        });
        assert_eq!(drain(&queue).await, ["ns/b"]);
    }

    #[tokio::test(start_paused = true)]
    async fn own_key_handler_queues_every_change_of_the_object() {
        let queue = queue();
        let services = own_key_handler::<Service>(queue.clone());
        let svc = Arc::new(service("ns", "web").build());
        services.on_add(&svc, true);
        services.on_update(&svc, &svc);
        services.on_delete(Deleted {
            obj: svc,
            final_state_unknown: false,
        });
        assert_eq!(drain(&queue).await, ["ns/web"]);
    }
}
