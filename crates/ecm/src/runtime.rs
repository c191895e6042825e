//! Builds the enabled controllers over one shared set of informers, runs
//! them, and reports whether they are synced and idle.

use std::collections::BTreeSet;
use std::sync::Arc;

use ecm_informer::{InformerFactory, Progress};
use ecm_types::{KubeEventRecorder, KubeWriter, PodProjection};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::controllers::ControllerName;
use crate::options::ControllerOptions;

/// Event source component of the Endpoints controller, as upstream names it.
const ENDPOINTS_COMPONENT: &str = "endpoint-controller";

/// An informer's resource (plural, as the API server names it) and progress.
pub struct WatchedResource {
    /// The resource's plural name.
    pub resource: &'static str,
    /// The informer's progress.
    pub progress: watch::Receiver<Progress>,
}

/// The running set of controllers.
pub struct Runtime {
    factory: InformerFactory,
    endpoints: Option<ecm_endpoints::Controller>,
    watched: Vec<WatchedResource>,
}

impl Runtime {
    /// Builds the `enabled` controllers on `client`; their informers stop
    /// when `shutdown` is cancelled. `host` names this process in the events
    /// it records.
    pub fn new(
        client: &kube::Client,
        enabled: &BTreeSet<ControllerName>,
        options: &ControllerOptions,
        host: &str,
        shutdown: &CancellationToken,
    ) -> Self {
        let factory = InformerFactory::new(client.clone()).with_shutdown(shutdown);
        let mut watched = Vec::new();
        let mut endpoints = None;
        if enabled.contains(&ControllerName::Endpoints) {
            let informers = ecm_endpoints::Informers {
                services: factory.informer::<Service>(),
                pods: factory.informer_with_transform::<Pod, PodProjection, _>(PodProjection::from),
                endpoints: factory.informer::<Endpoints>(),
            };
            watched.push(WatchedResource {
                resource: "services",
                progress: informers.services.progress(),
            });
            watched.push(WatchedResource {
                resource: "pods",
                progress: informers.pods.progress(),
            });
            watched.push(WatchedResource {
                resource: "endpoints",
                progress: informers.endpoints.progress(),
            });
            let writers = ecm_endpoints::Writers {
                endpoints: Arc::new(KubeWriter::new(client.clone())),
                events: Arc::new(KubeEventRecorder::new(client.clone(), ENDPOINTS_COMPONENT, host)),
            };
            endpoints = Some(ecm_endpoints::Controller::new(options.endpoints(), &informers, writers));
        }
        Self {
            factory,
            endpoints,
            watched,
        }
    }

    /// The informers' resources and progress, for quiescence checks.
    pub fn watched(&self) -> &[WatchedResource] {
        &self.watched
    }

    /// Whether every informer has delivered its first list.
    pub fn has_synced(&self) -> bool {
        self.watched.iter().all(|w| w.progress.borrow().has_synced)
    }

    /// Whether every controller has started and has no work queued,
    /// delayed or in progress.
    pub fn is_idle(&self) -> bool {
        self.endpoints
            .as_ref()
            .is_none_or(|c| c.is_started() && c.queue().is_idle())
    }

    /// Waits until some controller's queue changes state.
    pub async fn queue_changed(&self) {
        if let Some(controller) = &self.endpoints {
            let now = controller.queue().stats();
            controller.queue().wait_until(|stats| *stats != now).await;
        } else {
            std::future::pending::<()>().await;
        }
    }

    /// Starts the informers and runs every controller until `shutdown` is
    /// cancelled; returns once in-flight syncs are done.
    pub async fn run(&self, shutdown: CancellationToken) {
        self.factory.start();
        let endpoints = async {
            if let Some(controller) = &self.endpoints {
                controller.run(shutdown.clone()).await;
            }
        };
        endpoints.await;
        self.factory.shutdown().await;
    }
}
