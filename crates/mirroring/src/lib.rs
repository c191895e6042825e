//! The EndpointSlice mirroring controller: copies the user-written
//! `v1/Endpoints` of every Service without a selector into
//! `discovery.k8s.io/v1` EndpointSlices exactly as kube-controller-manager's
//! `endpointslice-mirroring-controller` does — subsets canonicalised first,
//! one slice per repacked subset and address family, at most
//! `--mirroring-max-endpoints-per-subset` addresses each, labels and
//! annotations copied, owned by the Endpoints — with upstream's events and
//! metrics.
//!
//! [`Controller`] is the running controller (informer handlers, the
//! `endpoint_slice_mirroring` queue, workers); the rest of the crate is its
//! reconciler core, usable on its own.
//!
//! A sync of one key (an Endpoints object, named like its Service) reads the
//! Endpoints, the Service and the slices this controller mirrored for it
//! from the informer caches. If the Endpoints is gone, opted out
//! (`endpointslice.kubernetes.io/skip-mirror: "true"` or a leader-election
//! annotation), or its Service is gone or has a selector, the mirrored
//! slices are deleted. Otherwise the
//! [`EndpointSliceTracker`](ecm_controller::slices::EndpointSliceTracker)
//! is asked whether the slice cache is current, and [`Reconciler::reconcile`]
//! computes a [`Plan`] — a pure function of its inputs, [`plan()`] — and
//! writes it through an [`ObjectWriter`](ecm_controller::ObjectWriter).
//! `../shared/spec/mirroring.md` specifies every rule.
//!
//! | module (private) | holds |
//! |---|---|
//! | `controller` | [`Controller`], [`Config`]: handlers, queue, workers, start-up |
//! | `handlers` | informer events → queue keys (the slice handler is `ecm-controller`'s) |
//! | `sync` | `sync(key)`: read the caches, clean up or reconcile |
//! | `ecm_types::repack` | the canonical layout of Endpoints subsets (`RepackSubsets`) |
//! | `desired` | the desired endpoints per address type and port list (pure) |
//! | `slice` | what is mirrored; labels, annotations, owner of mirrored slices |
//! | `plan` | the whole reconcile as a pure function, recycling included: [`plan()`] |
//! | `reconciler` | [`Reconciler`]: plan, then write |
//! | [`metrics`] | upstream's `endpoint_slice_mirroring_controller_*` metric names |
//! | `events`, `error` | event reasons, [`ReconcileError`], [`SyncError`] |
//!
//! # Examples
//!
//! Running the controller:
//!
//! ```no_run
//! use std::sync::Arc;
//! use ecm_informer::InformerFactory;
//! use ecm_controller::{KubeEventRecorder, KubeWriter, Runnable, Writers};
//! use ecm_mirroring::{Config, Controller, EVENT_SOURCE_COMPONENT, Informers};
//! use k8s_openapi::api::core::v1::{Endpoints, Service};
//! use k8s_openapi::api::discovery::v1::EndpointSlice;
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = kube::Client::try_default().await?;
//! let factory = InformerFactory::new(client.clone());
//! let informers = Informers {
//!     services: factory.informer::<Service>(),
//!     endpoints: factory.informer::<Endpoints>(),
//!     slices: factory.informer::<EndpointSlice>(),
//! };
//! let writers = Writers {
//!     objects: Arc::new(KubeWriter::new(client.clone())),
//!     events: Arc::new(KubeEventRecorder::new(client, EVENT_SOURCE_COMPONENT, "my-host")),
//! };
//! let controller = Controller::new(Config::default(), &informers, writers);
//! factory.start();
//! controller.run(CancellationToken::new()).await;
//! # Ok(())
//! # }
//! ```
//!
//! Planning the slices of an Endpoints object, without writing: two written
//! subsets on one port repack into one, so one slice holds both addresses.
//!
//! ```
//! use ecm_mirroring::plan;
//! use ecm_types::endpoint_slice::endpoints;
//! use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints};
//!
//! let subset = |ip: &str| EndpointSubset {
//!     addresses: Some(vec![EndpointAddress { ip: ip.into(), ..Default::default() }]),
//!     ports: Some(vec![EndpointPort { name: Some("http".into()), port: 80, protocol: Some("TCP".into()), ..Default::default() }]),
//!     ..Default::default()
//! };
//! let mut ep = Endpoints { subsets: Some(vec![subset("10.0.0.2"), subset("10.0.0.1")]), ..Default::default() };
//! ep.metadata.name = Some("web".into());
//! ep.metadata.namespace = Some("default".into());
//!
//! let plan = plan(&ep, [], 1000);
//! assert_eq!(plan.to_create.len(), 1);
//! let slice = &plan.to_create[0];
//! assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
//! assert_eq!(slice.address_type, "IPv4");
//! assert_eq!(endpoints(slice).len(), 2);
//! assert!(plan.to_update.is_empty() && plan.to_delete.is_empty());
//! ```

mod controller;
mod desired;
mod error;
mod events;
pub mod explain;
mod handlers;
pub mod metrics;
mod plan;
mod reconciler;
mod slice;
mod sync;
#[cfg(test)]
mod test_support;

pub use controller::{Config, Controller, Informers, MAX_SYNC_BACKOFF, SYNC_BACKOFF, mirroring_rate_limiter};
pub use error::{ReconcileError, SyncError};
pub use events::EVENT_SOURCE_COMPONENT;
pub use plan::{Plan, Totals, plan};
pub use reconciler::{DEFAULT_MAX_ENDPOINTS_PER_SUBSET, Reconciler, ReconcilerConfig};
