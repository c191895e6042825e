//! Shared, indexed informer caches for kube-rs controllers.
//!
//! This crate gives a Rust controller the cached, indexed, event-driven view
//! of the cluster that client-go's `SharedIndexInformer`, `Indexer` and
//! listers give Go controllers. It is built on
//! [`kube::runtime::watcher()`] — whose list/watch, resourceVersion
//! resumption, bookmarks, 410 relists and backoff it reuses as they are —
//! and adds what kube-runtime's reflector lacks: secondary indexes, listers,
//! the old object on updates, deletes inferred from relists with the last
//! known object, shared handlers with client-go's ordering guarantees, sync
//! state, client-go's optional periodic resync
//! ([`InformerConfig::resync_period`]), and transforms that keep a compact
//! projection instead of the full object.
//!
//! | module | holds |
//! |---|---|
//! | [`informer`] | [`Informer`]: watch, relist diff, handler delivery, sync state |
//! | [`factory`] | [`InformerFactory`]: one shared informer per type pair |
//! | [`store`] | [`Store`]: the indexed cache |
//! | [`label_index`] | the opt-in label index of a store: selector → objects, in proportion to the answer |
//! | [`lister`] | [`Lister`]: `get` (allocation-free) / `list(namespace, selector)` over a store |
//! | [`selector`] | [`Selector`] (from `ecm-labels`) and its construction from a `LabelSelector` |
//! | [`selector_registry`] | [`SelectorRegistry`]: labels → the owners (Services, ...) whose selector matches them |
//! | [`handler`] | [`EventHandler`], [`Deleted`], [`Notification`] |
//! | [`key`] | [`ObjectKey`]: the `namespace/name` key of stores, queues and controllers |
//! | [`metrics`] | metric names |
//! | [`without_managed_fields`] | [`WithoutManagedFields`]: decoding objects without building their `managedFields` |
//! | `tap` (private) | how list and bookmark resourceVersions are recovered |
//!
//! # Example
//!
//! A pod informer caching the compact `ecm_types::PodProjection`, with an
//! index by node, whose handler feeds the keys of changed pods to an
//! `ecm-workqueue` queue; workers read the cache through a lister, and act
//! on deleted pods too (their key is queued, the lister no longer has them).
//!
//! ```no_run
//! use std::sync::Arc;
//! use ecm_informer::{Deleted, EventHandler, Informer, InformerConfig, ObjectKey};
//! use ecm_types::PodProjection;
//! use ecm_workqueue::{QueueConfig, RateLimitingQueue, RetryPolicy, default_controller_rate_limiter, run_workers};
//! use k8s_openapi::api::core::v1::Pod;
//! use kube::{Api, Client};
//! use tokio_util::sync::CancellationToken;
//!
//! /// Queues the key of every pod whose endpoint may have changed. Cheap and
//! /// non-blocking, as handlers must be.
//! struct EnqueuePods(RateLimitingQueue<ObjectKey>);
//!
//! impl EventHandler<PodProjection> for EnqueuePods {
//!     fn on_add(&self, pod: &Arc<PodProjection>, _is_initial_list: bool) {
//!         self.0.add(ObjectKey::of(pod.as_ref()));
//!     }
//!     fn on_update(&self, old: &Arc<PodProjection>, new: &Arc<PodProjection>) {
//!         let change = new.change_from(old);
//!         if change.endpoint_changed || change.labels_changed {
//!             self.0.add(ObjectKey::of(new.as_ref()));
//!         }
//!     }
//!     fn on_delete(&self, deleted: Deleted<PodProjection>) {
//!         // Always carries the last known pod, even when the delete was
//!         // inferred from a relist (`deleted.final_state_unknown`).
//!         self.0.add(deleted.key());
//!     }
//! }
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::try_default().await?;
//! let pods: Informer<Pod, PodProjection> =
//!     Informer::with_transform(Api::all(client), InformerConfig::default(), PodProjection::from);
//! pods.add_indexer("node", |pod: &PodProjection| pod.node_name.clone().into_iter().collect())?;
//!
//! let queue = RateLimitingQueue::new(QueueConfig::default().name("pods"), default_controller_rate_limiter());
//! pods.add_event_handler(EnqueuePods(queue.clone()));
//!
//! let shutdown = CancellationToken::new();
//! tokio::spawn({
//!     let (pods, shutdown) = (pods.clone(), shutdown.clone());
//!     async move { pods.run(shutdown).await }
//! });
//! // As controllers do: no worker before the cache is complete.
//! pods.wait_for_sync().await;
//!
//! let lister = pods.lister();
//! let workers = tokio::spawn(run_workers(
//!     queue.clone(),
//!     2,
//!     move |key: ObjectKey| {
//!         let pod = lister.get_by_key(&key);
//!         async move {
//!             match pod {
//!                 Some(pod) => tracing::info!(%key, ready = pod.is_ready(), "sync pod"),
//!                 None => tracing::info!(%key, "pod deleted"),
//!             }
//!             Ok::<(), std::convert::Infallible>(())
//!         }
//!     },
//!     RetryPolicy::default(),
//! ));
//!
//! let on_node_1 = pods.store().by_index("node", "node-1")?;
//! # let _ = on_node_1;
//! shutdown.cancel();
//! queue.shut_down_with_drain().await;
//! workers.await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Selector indexes
//!
//! Two lookups make a controller's cost follow the change rather than the
//! namespace, for any operator whose objects select others by label:
//!
//! - objects → owners: "which objects does this selector match?" —
//!   [`Store::add_label_index`] (or [`Informer::add_label_index`]) keeps an
//!   inverted index of labels, and [`Lister::list`] then answers equality
//!   selectors from its posting lists;
//! - owners → objects: "which owners select these labels?" — a
//!   [`SelectorRegistry`] of the owners' selectors, kept by
//!   [`SelectorRegistry::handler`] on the owners' informer.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use ecm_informer::{Informer, ObjectKey, Selector, SelectorRegistry, Store};
//! use k8s_openapi::api::core::v1::{Pod, Service, ServiceSpec};
//! use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
//!
//! let app = BTreeMap::from([("app".to_owned(), "web".to_owned())]);
//! let meta = |name: &str| ObjectMeta { namespace: Some("shop".into()), name: Some(name.into()), ..Default::default() };
//!
//! // Pods, indexed by label: a Service's pods cost what they are, not the namespace.
//! let pods: Informer<Pod> = Informer::detached(Store::new());
//! pods.add_label_index();
//! pods.store().insert(Arc::new(Pod { metadata: ObjectMeta { labels: Some(app.clone()), ..meta("web-0") }, ..Default::default() }));
//! pods.store().insert(Arc::new(Pod { metadata: meta("other"), ..Default::default() }));
//! assert_eq!(pods.lister().list("shop", &Selector::from_labels(&app)).len(), 1);
//!
//! // Services, by selector: a pod's Services cost what they are, not the namespace.
//! let services: Informer<Service> = Informer::detached(Store::new());
//! services.store().insert(Arc::new(Service {
//!     metadata: meta("web"),
//!     spec: Some(ServiceSpec { selector: Some(app.clone()), ..Default::default() }),
//!     ..Default::default()
//! }));
//! let registry = SelectorRegistry::new();
//! // Registered handlers receive the cached Services first, then every change.
//! services.add_event_handler(registry.handler(|svc: &Service| {
//!     svc.spec.as_ref()?.selector.as_ref().map(Selector::from_labels)
//! }));
//! assert_eq!(registry.matching("shop", &app).into_iter().collect::<Vec<_>>(), [ObjectKey::new("shop", "web")]);
//! ```
//!
//! # Memory
//!
//! Transforms decide what the cache costs. Measured on 100 000 realistic
//! pods (about 10.4 KB of JSON each: two containers with env, resources,
//! ports and probes; five conditions; two container statuses; the
//! `managedFields` kube-controller-manager and the kubelet write), live heap
//! per cached pod, store and namespace index included (figures, method and
//! command in `docs/benchmarks.md`; the test is `tests/memory.rs`):
//!
//! | cached as | heap bytes per pod | vs full |
//! |---|---:|---:|
//! | full `Pod` | 79 907 | 100 % |
//! | `Pod` without `managedFields` ([`strip_managed_fields`], the default) | 30 653 | 38 % |
//! | `ecm_types::PodProjection` ([`Informer::with_transform`]) | 1 822 | 2.3 % |
//!
//! The default transform saves 62 % of a pod's memory; the projection 97.7 %
//! (about 8 GiB versus 0.2 GiB for 100 000 pods).
//!
//! # Lints
//!
//! The crate follows the workspace lint policy: `unsafe_code` forbidden,
//! `missing_docs`, `clippy::pedantic` and `clippy::unwrap_used` warned and
//! denied in CI.

pub mod factory;
pub mod handler;
pub mod informer;
pub mod key;
pub mod label_index;
pub mod lister;
pub mod metrics;
pub mod selector;
pub mod selector_registry;
pub mod store;
mod tap;
pub mod without_managed_fields;

pub use factory::InformerFactory;
pub use handler::{Deleted, EventHandler, FnHandler, Notification, handler_fn};
pub use informer::{HandlerRegistration, Informer, InformerConfig, InformerError, Progress, strip_managed_fields};
pub use key::{KeyError, ObjectKey};
pub use lister::Lister;
pub use selector::{Selector, SelectorError};
pub use selector_registry::SelectorRegistry;
pub use store::{IndexFn, NAMESPACE_INDEX, Store, StoreError};
pub use without_managed_fields::WithoutManagedFields;
