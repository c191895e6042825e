//! Builds the enabled controllers over one shared set of informers, runs
//! them, and reports whether they are synced and idle.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ecm_informer::{Informer, InformerFactory, Progress};
use ecm_types::{KubeEventRecorder, KubeWriter, PodProjection};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::client::ClientSource;
use crate::controllers::ControllerName;

/// The component name of the informers' client.
pub const SHARED_INFORMERS: &str = "shared-informers";
use crate::options::ControllerOptions;

/// Event source component of the Endpoints controller, as upstream names it.
const ENDPOINTS_COMPONENT: &str = "endpoint-controller";
/// Event source component of the EndpointSlice controller, as upstream names it.
const ENDPOINTSLICE_COMPONENT: &str = ecm_endpointslice::events::EVENT_SOURCE_COMPONENT;
/// Event source component of the mirroring controller, as upstream names it.
const MIRRORING_COMPONENT: &str = ecm_mirroring::events::EVENT_SOURCE_COMPONENT;

/// The informers' resync period for kube-controller-manager's
/// `--min-resync-period` (its `ResyncPeriod`): the minimum stretched by a
/// random factor in [1, 2), drawn once per process, so that replicas and
/// restarts do not resync in step. `None` for a zero minimum.
///
/// A resync hands every cached object to the controllers again; they queue
/// every Service (and mirrored Endpoints), whose syncs write nothing unless
/// something drifted.
pub fn resync_period(min: Duration) -> Option<Duration> {
    if min.is_zero() {
        return None;
    }
    // A random u64 from std's per-process hash keys: no RNG dependency for
    // one draw that needs no quality beyond "not the same everywhere".
    let random = std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), 0_u8);
    let fraction = (random >> 11) as f64 / (1_u64 << 53) as f64;
    Some(min.mul_f64(1.0 + fraction))
}

/// An informer's resource (plural, as the API server names it) and progress.
pub struct WatchedResource {
    /// The resource's plural name.
    pub resource: &'static str,
    /// The informer's progress.
    pub progress: watch::Receiver<Progress>,
}

/// The informers the controllers share: one watch per resource type, made
/// on first use.
struct SharedInformers<'f> {
    factory: &'f InformerFactory,
    watched: Vec<WatchedResource>,
}

impl SharedInformers<'_> {
    fn watch(&mut self, resource: &'static str, progress: watch::Receiver<Progress>) {
        if self.watched.iter().all(|w| w.resource != resource) {
            self.watched.push(WatchedResource { resource, progress });
        }
    }

    fn services(&mut self) -> Informer<Service> {
        let informer = self.factory.informer::<Service>();
        self.watch("services", informer.progress());
        informer
    }

    fn pods(&mut self) -> Informer<Pod, PodProjection> {
        let informer = self
            .factory
            .informer_with_transform::<Pod, PodProjection, _>(PodProjection::from);
        self.watch("pods", informer.progress());
        informer
    }

    fn endpoints(&mut self) -> Informer<Endpoints> {
        let informer = self.factory.informer::<Endpoints>();
        self.watch("endpoints", informer.progress());
        informer
    }

    fn slices(&mut self) -> Informer<EndpointSlice> {
        let informer = self.factory.informer::<EndpointSlice>();
        self.watch("endpointslices", informer.progress());
        informer
    }

    fn nodes(&mut self) -> Informer<Node> {
        let informer = self
            .factory
            .informer_with_transform::<Node, Node, _>(ecm_endpointslice::compact_node);
        self.watch("nodes", informer.progress());
        informer
    }
}

/// The running set of controllers.
pub struct Runtime {
    factory: InformerFactory,
    endpoints: Option<ecm_endpoints::Controller>,
    endpointslice: Option<ecm_endpointslice::Controller>,
    mirroring: Option<ecm_mirroring::Controller>,
    watched: Vec<WatchedResource>,
}

impl Runtime {
    /// Builds the `enabled` controllers; their informers stop when
    /// `shutdown` is cancelled. The informers share the client of component
    /// [`SHARED_INFORMERS`]; each controller writes through a client of its
    /// own, named after it ([`ControllerName::canonical`]), as in
    /// kube-controller-manager. `host` names this process in the events it
    /// records.
    pub fn new(
        clients: &dyn ClientSource,
        enabled: &BTreeSet<ControllerName>,
        options: &ControllerOptions,
        host: &str,
        shutdown: &CancellationToken,
    ) -> Self {
        Self::with_resync_period(clients, enabled, options, host, shutdown, None)
    }

    /// [`new`](Self::new), with informers that hand every cached object to
    /// the controllers again each `resync` (see [`resync_period`]).
    pub fn with_resync_period(
        clients: &dyn ClientSource,
        enabled: &BTreeSet<ControllerName>,
        options: &ControllerOptions,
        host: &str,
        shutdown: &CancellationToken,
        resync: Option<Duration>,
    ) -> Self {
        let factory = InformerFactory::new(clients.client(SHARED_INFORMERS))
            .with_shutdown(shutdown)
            .with_resync_period(resync);
        let mut shared = SharedInformers {
            factory: &factory,
            watched: Vec::new(),
        };
        let endpoints = enabled.contains(&ControllerName::Endpoints).then(|| {
            let client = clients.client(ControllerName::Endpoints.canonical());
            let informers = ecm_endpoints::Informers {
                services: shared.services(),
                pods: shared.pods(),
                endpoints: shared.endpoints(),
            };
            let writers = ecm_endpoints::Writers {
                endpoints: Arc::new(KubeWriter::new(client.clone())),
                events: Arc::new(KubeEventRecorder::new(client.clone(), ENDPOINTS_COMPONENT, host)),
            };
            ecm_endpoints::Controller::new(options.endpoints(), &informers, writers)
        });
        let endpointslice = enabled.contains(&ControllerName::EndpointSlice).then(|| {
            let client = clients.client(ControllerName::EndpointSlice.canonical());
            let informers = ecm_endpointslice::Informers {
                services: shared.services(),
                pods: shared.pods(),
                slices: shared.slices(),
                nodes: shared.nodes(),
            };
            let writers = ecm_endpointslice::Writers {
                slices: Arc::new(KubeWriter::new(client.clone())),
                events: Arc::new(KubeEventRecorder::new(client.clone(), ENDPOINTSLICE_COMPONENT, host)),
            };
            ecm_endpointslice::Controller::new(options.endpointslice(), &informers, writers)
        });
        let mirroring = enabled.contains(&ControllerName::Mirroring).then(|| {
            let client = clients.client(ControllerName::Mirroring.canonical());
            let informers = ecm_mirroring::Informers {
                services: shared.services(),
                endpoints: shared.endpoints(),
                slices: shared.slices(),
            };
            let writers = ecm_mirroring::Writers {
                slices: Arc::new(KubeWriter::new(client.clone())),
                events: Arc::new(KubeEventRecorder::new(client.clone(), MIRRORING_COMPONENT, host)),
            };
            ecm_mirroring::Controller::new(options.mirroring(), &informers, writers)
        });
        let watched = shared.watched;
        Self {
            factory,
            endpoints,
            endpointslice,
            mirroring,
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
            && self
                .endpointslice
                .as_ref()
                .is_none_or(ecm_endpointslice::Controller::is_idle)
            && self.mirroring.as_ref().is_none_or(ecm_mirroring::Controller::is_idle)
    }

    /// Waits until some controller's queue changes state.
    pub async fn queue_changed(&self) {
        let endpoints = async {
            match &self.endpoints {
                Some(controller) => {
                    let now = controller.queue().stats();
                    controller.queue().wait_until(|stats| *stats != now).await;
                }
                None => std::future::pending().await,
            }
        };
        let endpointslice = async {
            match &self.endpointslice {
                Some(controller) => controller.queues_changed(controller.queue_stats()).await,
                None => std::future::pending().await,
            }
        };
        let mirroring = async {
            match &self.mirroring {
                Some(controller) => controller.queues_changed(controller.queue_stats()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = endpoints => {}
            () = endpointslice => {}
            () = mirroring => {}
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
        let endpointslice = async {
            if let Some(controller) = &self.endpointslice {
                controller.run(shutdown.clone()).await;
            }
        };
        let mirroring = async {
            if let Some(controller) = &self.mirroring {
                controller.run(shutdown.clone()).await;
            }
        };
        tokio::join!(endpoints, endpointslice, mirroring);
        self.factory.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resync_periods_stretch_the_minimum_by_up_to_twice() {
        assert_eq!(resync_period(Duration::ZERO), None);
        let min = Duration::from_secs(12 * 3600);
        let draws: Vec<Duration> = (0..64).map(|_| resync_period(min).unwrap()).collect();
        assert!(draws.iter().all(|d| *d >= min && *d < min * 2), "{draws:?}");
        let distinct: BTreeSet<_> = draws.iter().collect();
        assert!(distinct.len() > 1, "not random: {draws:?}");
    }
}
