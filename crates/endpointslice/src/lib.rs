//! The EndpointSlice controller: turns every Service with a selector and
//! its pods into `discovery.k8s.io/v1` EndpointSlices exactly as
//! kube-controller-manager's `endpointslice-controller` does, with its
//! placement algorithm, placeholder and recycling rules, the EndpointSlice
//! tracker, the topology aware hints and `trafficDistribution` hints, and
//! upstream's metrics.
//!
//! [`Controller`] is the running controller (informer handlers, the
//! `endpoint_slice` queue, workers, the topology worker); the rest of the
//! crate is its reconciler core, usable on its own.
//!
//! A sync of one Service reads the Service, the pods its selector matches
//! and its managed slices from the informer caches, checks the
//! [`EndpointSliceTracker`](ecm_controller::slices::EndpointSliceTracker)
//! for a stale slice cache, and calls [`Reconciler::reconcile`]. The
//! reconciler first computes a [`Plan`] — a pure function of its inputs,
//! [`plan()`] — and then writes it through an
//! [`ObjectWriter`](ecm_controller::ObjectWriter), recording what the API returns
//! in the tracker. `../shared/spec/endpointslice.md` specifies every rule;
//! where upstream leaves a choice to Go's map order, this crate fixes it
//! (see the `placement` and `plan` modules).
//!
//! | module (private) | holds |
//! |---|---|
//! | `controller` | [`Controller`], [`Config`]: handlers, queues, workers, start-up |
//! | `handlers` | informer events → queue keys (the shared ones live in `ecm-controller`) |
//! | `sync` | `sync(key)`: read the caches, reconcile |
//! | `nodes` | the compact node form ([`compact_node`]) and the topology worker |
//! | `desired` | the desired endpoints per address type and port list (pure) |
//! | `placement` | which slice each endpoint goes to (pure) |
//! | `slice` | slice labels, owner reference, placeholder, trigger time |
//! | `hints` | topology aware hints, `trafficDistribution` hints, the [`TopologyCache`] |
//! | `plan` | the whole reconcile as a pure function, [`plan()`] |
//! | `reconciler` | [`Reconciler`]: plan, then write |
//! | [`explain`] | the desired slices from scratch and why, for `ecm explain` and shadow mode |
//! | [`metrics`] | upstream's `endpoint_slice_controller_*` metric names |
//! | `events`, `error` | event reasons, [`SyncError`], [`ReconcileError`] |
//!
//! # Examples
//!
//! Running the controller:
//!
//! ```no_run
//! use std::sync::Arc;
//! use ecm_controller::{KubeEventRecorder, KubeWriter, Runnable, Writers};
//! use ecm_endpointslice::{Config, Controller, EVENT_SOURCE_COMPONENT, Informers, compact_node};
//! use ecm_informer::InformerFactory;
//! use ecm_types::PodProjection;
//! use k8s_openapi::api::core::v1::{Node, Service};
//! use k8s_openapi::api::discovery::v1::EndpointSlice;
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = kube::Client::try_default().await?;
//! let factory = InformerFactory::new(client.clone());
//! let informers = Informers {
//!     services: factory.informer::<Service>(),
//!     pods: factory.informer::<PodProjection>(),
//!     slices: factory.informer::<EndpointSlice>(),
//!     nodes: factory.informer_with_transform::<Node, Node, _>(compact_node),
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
//! Planning the slices of a Service with three pods, without writing:
//!
//! ```
//! use std::sync::Arc;
//! use ecm_endpointslice::{PlanContext, TopologySnapshot, plan};
//! use ecm_types::endpoint_slice::endpoints;
//! use ecm_types::fixtures::{pod, service};
//! use k8s_openapi::api::core::v1::Node;
//!
//! let svc = service("default", "web").selector([("app", "web")]).port("http", 80, 8080).build();
//! let pods: Vec<_> = (1..=3)
//!     .map(|i| pod("default", &format!("web-{i}")).ip(&format!("10.0.0.{i}")).ready(true).node("node-a").projection())
//!     .collect();
//! let nodes = |name: &str| {
//!     let mut node = Node::default();
//!     node.metadata.name = Some(name.to_owned());
//!     Some(Arc::new(node))
//! };
//! let ctx = PlanContext {
//!     max_endpoints_per_slice: 2,
//!     nodes: &nodes,
//!     topology: &TopologySnapshot::default(),
//!     trigger_time: None,
//! };
//! let plan = plan(&ctx, &svc, &pods, []);
//! let ipv4 = &plan.address_types[0];
//! let sizes: Vec<usize> = ipv4.to_create.iter().map(|s| endpoints(s).len()).collect();
//! assert_eq!(sizes, [2, 1]);
//! assert!(ipv4.to_update.is_empty() && ipv4.to_delete.is_empty());
//! assert_eq!(ipv4.to_create[0].metadata.generate_name.as_deref(), Some("web-"));
//! ```

mod controller;
mod desired;
mod error;
mod events;
pub mod explain;
mod handlers;
mod hints;
pub mod metrics;
mod nodes;
mod placement;
mod plan;
mod reconciler;
mod slice;
mod sync;
#[cfg(test)]
mod test_support;

pub use controller::{Config, Controller, Informers, endpoint_slice_rate_limiter};
pub use desired::{NodeLookup, pod_to_endpoint};
pub use error::{ReconcileError, ReconcileErrors, SyncError};
pub use events::EVENT_SOURCE_COMPONENT;
pub use handlers::SLICE_CHANGE_MIN_SYNC_DELAY;
pub use hints::{TopologyCache, TopologySnapshot};
pub use nodes::compact_node;
pub use plan::{AddressTypePlan, Fallback, Plan, PlanContext, plan, plan_changed};
pub use reconciler::{Reconciler, ReconcilerConfig};
pub use slice::new_slice;
