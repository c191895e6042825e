//! A controller runtime for kube-rs operators, and what ecm's three endpoint
//! controllers share.
//!
//! A controller here is client-go's shape: informers feed event handlers,
//! handlers turn events into keys on a rate-limited work queue
//! ([`ecm_workqueue`]), and workers call one `sync(key)` function that reads
//! the informer caches ([`ecm_informer`]), computes what should exist and
//! writes the difference. [`ControllerCore`] is that shell — queue, handler
//! registrations, waiting for the caches, the worker loop, "started" and
//! "idle" — so that a controller adds only its handlers and its sync.
//! [`Runnable`] is how a program hosting several controllers drives them
//! without knowing their kinds. Writes go through the narrow
//! [`ObjectWriter`] and [`EventRecorder`] traits, implemented over
//! `kube::Client` ([`KubeWriter`], [`KubeEventRecorder`]) and mocked with
//! `mockall` behind the `mock` feature; [`stale`] guards a sync against a
//! cache that has not yet seen the controller's own writes.
//!
//! | module | holds | for |
//! |---|---|---|
//! | [`core`](mod@core) | [`ControllerCore`], [`CoreState`], [`QueueProbe`] | any controller |
//! | [`runnable`] | [`Runnable`] | any controller host |
//! | [`sync_handler`] | [`SyncHandler`]: a controller's `sync(key)`, timed and recorded | any controller |
//! | [`config`] | [`BaseConfig`], [`Configure`] | any controller |
//! | [`writer`] | [`ObjectWriter`], [`KubeWriter`], [`WriteError`], [`Writers`] | any controller |
//! | [`events`] | [`EventRecorder`], [`KubeEventRecorder`], [`EventRecord`] | any controller |
//! | [`stale`] | [`StaleCacheGuard`], [`Expectations`], [`ObjectVersions`] | any controller |
//! | [`outcome`] | [`SyncResult`], [`WriteOperation`]: metric label values | any controller |
//! | [`handlers`] | [`own_key_handler`] (any kind), [`pod_handler`] (Services of a pod), [`service_selector_handler`] | any / endpoint controllers |
//! | [`service_pods`] | [`ServicePods`]: a Service and the pods it selects | endpoint controllers |
//! | [`pod_services`] | [`services_for_pod_event`], [`registered_services_for_pod_event`]: which Services a pod event concerns | endpoint controllers |
//! | [`trigger_time`] | [`TriggerTimeTracker`]: the last-change-trigger-time annotation | endpoint controllers |
//! | `testing` (feature `mock`) | a test queue and `drain` | tests of any controller |
//! | [`slices`] | slice manager and index, tracker, slice handler, write order, gauges | EndpointSlice writers |
//!
//! # Example: a controller that is not an endpoint controller
//!
//! Keeps a ConfigMap `<name>-copy` equal to every ConfigMap labelled
//! `copy: "yes"`, and deletes the copy when the label or the original goes.
//! The example runs it against ecm's in-memory API server; against a real
//! cluster, take the client from `kube::Client::try_default()`.
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use ecm_controller::{
//!     BaseConfig, ControllerCore, CoreState, KubeWriter, ObjectWriter, Runnable, SyncHandler, WriteError,
//! };
//! use ecm_informer::{Informer, InformerFactory, Lister, Notification, ObjectKey, handler_fn};
//! use ecm_workqueue::{QueueConfig, RateLimitingQueue, default_controller_rate_limiter};
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use tokio_util::sync::CancellationToken;
//!
//! /// The original's key for an event on either ConfigMap.
//! fn original(key: ObjectKey) -> ObjectKey {
//!     match key.name().strip_suffix("-copy") {
//!         Some(name) => ObjectKey::new(key.namespace(), name),
//!         None => key,
//!     }
//! }
//!
//! /// The sync: what the cache says against what should be.
//! struct Copy {
//!     configmaps: Lister<ConfigMap>,
//!     writer: Arc<dyn ObjectWriter<ConfigMap>>,
//! }
//!
//! #[async_trait]
//! impl SyncHandler<ObjectKey> for Copy {
//!     type Error = WriteError;
//!
//!     /// Brings `<key>-copy` in line with `key`: the only place that writes.
//!     async fn sync(&self, key: &ObjectKey) -> Result<(), WriteError> {
//!         let (namespace, copy_name) = (key.namespace(), format!("{}-copy", key.name()));
//!         let wanted = self.configmaps.get(namespace, key.name()).filter(|cm| {
//!             cm.metadata.labels.as_ref().and_then(|l| l.get("copy")).is_some_and(|v| v == "yes")
//!         });
//!         match (wanted, self.configmaps.get(namespace, &copy_name)) {
//!             (None, None) => Ok(()),
//!             (None, Some(_)) => match self.writer.delete(namespace, &copy_name).await {
//!                 Err(err) if !err.is_not_found() => Err(err),
//!                 _ => Ok(()),
//!             },
//!             (Some(original), Some(copy)) if copy.data == original.data => Ok(()),
//!             (Some(original), copy) => {
//!                 let mut desired = ConfigMap { data: original.data.clone(), ..ConfigMap::default() };
//!                 desired.metadata.name = Some(copy_name);
//!                 match copy {
//!                     Some(copy) => {
//!                         desired.metadata.resource_version = copy.metadata.resource_version.clone();
//!                         self.writer.update(namespace, &desired).await.map(drop)
//!                     }
//!                     None => self.writer.create(namespace, &desired).await.map(drop),
//!                 }
//!             }
//!         }
//!     }
//! }
//!
//! /// The controller: the shared core, a handler, the sync.
//! #[derive(Clone)]
//! struct Copier {
//!     core: ControllerCore<ObjectKey>,
//!     copy: Arc<Copy>,
//! }
//!
//! impl Copier {
//!     fn new(configmaps: &Informer<ConfigMap>, writer: Arc<dyn ObjectWriter<ConfigMap>>) -> Self {
//!         let queue = RateLimitingQueue::new(QueueConfig::default().name("copier"), default_controller_rate_limiter());
//!         let core = ControllerCore::new(queue.clone(), BaseConfig::default());
//!         core.register(configmaps.add_event_handler(handler_fn(move |change: Notification<ConfigMap>| {
//!             queue.add(original(ObjectKey::of(change.object().as_ref())));
//!         })));
//!         let copy = Arc::new(Copy { configmaps: configmaps.lister(), writer });
//!         Self { core, copy }
//!     }
//! }
//!
//! #[async_trait]
//! impl Runnable for Copier {
//!     fn state(&self) -> &CoreState {
//!         self.core.state()
//!     }
//!
//!     async fn run(&self, shutdown: CancellationToken) {
//!         let copy = Arc::clone(&self.copy);
//!         self.core.run(&shutdown, || {}, copy, std::future::ready(())).await;
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = ecm_apiserver::ApiServer::new(ecm_apiserver::Config::default())?;
//! let client = server.client(); // or kube::Client::try_default().await?
//! let factory = InformerFactory::new(client.clone());
//! let copier = Copier::new(&factory.informer(), Arc::new(KubeWriter::new(client.clone())));
//! let shutdown = CancellationToken::new();
//! factory.start();
//! let running = tokio::spawn({
//!     let (copier, shutdown) = (copier.clone(), shutdown.clone());
//!     async move { copier.run(shutdown).await }
//! });
//!
//! let api: kube::Api<ConfigMap> = kube::Api::default_namespaced(client);
//! let mut original = ConfigMap { data: Some([("k".to_owned(), "v".to_owned())].into()), ..ConfigMap::default() };
//! original.metadata.name = Some("settings".to_owned());
//! original.metadata.labels = Some([("copy".to_owned(), "yes".to_owned())].into());
//! api.create(&Default::default(), &original).await?;
//! // Wait on the controller's queue, not on a clock.
//! let copy = tokio::time::timeout(std::time::Duration::from_secs(30), async {
//!     loop {
//!         let since = copier.queue_stats();
//!         if let Some(copy) = api.get_opt("settings-copy").await? {
//!             return Ok::<_, kube::Error>(copy);
//!         }
//!         copier.queues_changed(since).await;
//!     }
//! })
//! .await??;
//! assert_eq!(copy.data, original.data);
//!
//! shutdown.cancel();
//! running.await?;
//! factory.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod config;
pub mod core;
pub mod events;
pub mod handlers;
pub mod incremental;
pub mod outcome;
pub mod pod_services;
pub mod runnable;
pub mod service_pods;
pub mod slices;
pub mod stale;
pub mod sync_handler;
#[cfg(any(test, feature = "mock"))]
pub mod testing;
pub mod trigger_time;
pub mod writer;

pub use crate::core::{ControllerCore, CoreState, QueueProbe};
pub use config::{BaseConfig, Configure, IncrementalSyncs};
pub use events::{EventRecord, EventRecorder, EventType, KubeEventRecorder};
pub use handlers::{own_key_handler, pod_handler, service_selector_handler, watch_services_and_pods};
pub use incremental::{ChangeTracker, ChangedPods, SyncScope};
pub use outcome::{SyncResult, WriteOperation};
pub use pod_services::{PodServiceQuery, registered_services_for_pod_event, service_selector, services_for_pod_event};
pub use runnable::Runnable;
pub use service_pods::ServicePods;
pub use stale::{Expectations, ObjectVersions, StaleCacheGuard};
pub use sync_handler::SyncHandler;
pub use trigger_time::TriggerTimeTracker;
pub use writer::{KubeWriter, ObjectWriter, WriteError, Writers};

#[cfg(any(test, feature = "mock"))]
pub use events::MockEventRecorder;
#[cfg(any(test, feature = "mock"))]
pub use writer::MockObjectWriter;
