//! The Endpoints controller: one `v1/Endpoints` object per Service with a
//! selector, exactly as kube-controller-manager's `endpoints-controller`
//! writes it.
//!
//! For every Service with a selector, the controller lists the pods the
//! selector matches, turns each into an address (ready or not ready, per
//! port, of the Service's primary IP family), packs them into subsets,
//! caps the object at 1000 addresses, and writes the object only when it
//! differs from what is stored. It deletes the Endpoints of deleted
//! Services, leaves selector-less and ExternalName Services alone, and labels
//! what it writes `endpoints.kubernetes.io/managed-by: endpoint-controller`.
//! `../shared/spec/endpoints.md` specifies every rule; `docs/parity.md`
//! lists them with the tests that pin them.
//!
//! | module | holds |
//! |---|---|
//! | `controller` | [`Controller`], [`Config`], [`Informers`] |
//! | `handlers` | informer events → queue keys |
//! | `sync` | `sync(key)`: the only place that writes |
//! | `desired` | the desired object, and whether to write it (pure) |
//! | `address`, `capacity`, `ecm_types::repack` | the pure rules `desired` is made of |
//! | `error`, `events`, [`metrics`] | [`SyncError`], event reasons, metric names |
//!
//! The controller runs on `ecm-controller`'s shared core: the stale-cache
//! guard ([`ObjectVersions`](ecm_controller::ObjectVersions)), the Service
//! and Pod handlers and the run loop are the same as the other controllers'.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use ecm_controller::{KubeEventRecorder, KubeWriter, Runnable, Writers};
//! use ecm_endpoints::{Config, Controller, EVENT_SOURCE_COMPONENT, Informers};
//! use ecm_informer::InformerFactory;
//! use ecm_types::PodProjection;
//! use k8s_openapi::api::core::v1::{Endpoints, Service};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = kube::Client::try_default().await?;
//! let factory = InformerFactory::new(client.clone());
//! let informers = Informers {
//!     services: factory.informer::<Service>(),
//!     pods: factory.informer::<PodProjection>(),
//!     endpoints: factory.informer::<Endpoints>(),
//! };
//! let writers = Writers {
//!     objects: Arc::new(KubeWriter::new(client.clone())),
//!     events: Arc::new(KubeEventRecorder::new(client, EVENT_SOURCE_COMPONENT, "my-host")),
//! };
//! let controller = Controller::new(Config::default(), &informers, writers);
//! let shutdown = CancellationToken::new();
//! factory.start();
//! controller.run(shutdown).await;
//! # Ok(())
//! # }
//! ```

mod address;
mod capacity;
mod controller;
mod desired;
mod error;
mod events;
pub mod explain;
mod handlers;
pub mod metrics;
mod sync;

pub use controller::{Config, Controller, Informers};
pub use error::SyncError;
pub use events::EVENT_SOURCE_COMPONENT;
