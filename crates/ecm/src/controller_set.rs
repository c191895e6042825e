//! [`ControllerSet`]: the enabled controllers over one shared set of
//! informers — built, run, and asked whether they are synced and idle. Every
//! controller is driven through `ecm_controller::Runnable`, so nothing here
//! has an arm per controller beyond building it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ecm_controller::{KubeEventRecorder, KubeWriter, ObjectWriter, Runnable, Writers};
use ecm_informer::{Informer, InformerFactory, Progress};
use ecm_types::PodProjection;
use k8s_openapi::api::core::v1::{Endpoints, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::client::ClientSource;
use crate::controllers::ControllerName;

use crate::options::ControllerOptions;

/// The component name of the informers' client.
pub const SHARED_INFORMERS: &str = "shared-informers";

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
pub(crate) struct SharedInformers<'f> {
    factory: &'f InformerFactory,
    watched: Vec<WatchedResource>,
}

impl<'f> SharedInformers<'f> {
    /// Informers made from `factory`, none yet.
    pub(crate) fn new(factory: &'f InformerFactory) -> Self {
        Self {
            factory,
            watched: Vec::new(),
        }
    }

    /// The resources watched so far and their progress.
    pub(crate) fn into_watched(self) -> Vec<WatchedResource> {
        self.watched
    }

    fn watch(&mut self, resource: &'static str, progress: watch::Receiver<Progress>) {
        if self.watched.iter().all(|w| w.resource != resource) {
            self.watched.push(WatchedResource { resource, progress });
        }
    }

    pub(crate) fn services(&mut self) -> Informer<Service> {
        let informer = self.factory.informer::<Service>();
        self.watch("services", informer.progress());
        informer
    }

    pub(crate) fn pods(&mut self) -> Informer<PodProjection> {
        // Watches PodProjection itself: watch events decode straight into
        // the projection, never building the full Pod.
        let informer = self.factory.informer::<PodProjection>();
        // Syncs list a Service's pods by its selector: with the label index
        // that costs the Service's pods, not its namespace's. Idempotent.
        informer.add_label_index();
        self.watch("pods", informer.progress());
        informer
    }

    pub(crate) fn endpoints(&mut self) -> Informer<Endpoints> {
        let informer = self.factory.informer::<Endpoints>();
        self.watch("endpoints", informer.progress());
        informer
    }

    pub(crate) fn slices(&mut self) -> Informer<EndpointSlice> {
        let informer = self.factory.informer::<EndpointSlice>();
        self.watch("endpointslices", informer.progress());
        informer
    }

    pub(crate) fn nodes(&mut self) -> Informer<Node> {
        let informer = self
            .factory
            .informer_with_transform::<Node, Node, _>(ecm_endpointslice::compact_node);
        self.watch("nodes", informer.progress());
        informer
    }
}

/// What a controller writes through: `client`, and events from `component`
/// on `host`.
fn writers<K>(client: kube::Client, component: &str, host: &str) -> Writers<K>
where
    KubeWriter: ObjectWriter<K>,
    K: Send + Sync + 'static,
{
    Writers {
        objects: Arc::new(KubeWriter::new(client.clone())),
        events: Arc::new(KubeEventRecorder::new(client, component, host)),
    }
}

/// The enabled controllers and the informers they share.
pub struct ControllerSet {
    factory: InformerFactory,
    controllers: Vec<Arc<dyn Runnable>>,
    watched: Vec<WatchedResource>,
}

impl ControllerSet {
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
        let mut shared = SharedInformers::new(&factory);
        let mut controllers: Vec<Arc<dyn Runnable>> = Vec::new();
        for name in enabled {
            let client = clients.client(name.canonical());
            controllers.push(match name {
                ControllerName::Endpoints => {
                    let informers = ecm_endpoints::Informers {
                        services: shared.services(),
                        pods: shared.pods(),
                        endpoints: shared.endpoints(),
                    };
                    let writers = writers(client, ecm_endpoints::EVENT_SOURCE_COMPONENT, host);
                    Arc::new(ecm_endpoints::Controller::new(options.endpoints(), &informers, writers))
                }
                ControllerName::EndpointSlice => {
                    let informers = ecm_endpointslice::Informers {
                        services: shared.services(),
                        pods: shared.pods(),
                        slices: shared.slices(),
                        nodes: shared.nodes(),
                    };
                    let writers = writers(client, ecm_endpointslice::EVENT_SOURCE_COMPONENT, host);
                    let controller = ecm_endpointslice::Controller::new(options.endpointslice(), &informers, writers);
                    Arc::new(controller)
                }
                ControllerName::Mirroring => {
                    let informers = ecm_mirroring::Informers {
                        services: shared.services(),
                        endpoints: shared.endpoints(),
                        slices: shared.slices(),
                    };
                    let writers = writers(client, ecm_mirroring::EVENT_SOURCE_COMPONENT, host);
                    Arc::new(ecm_mirroring::Controller::new(options.mirroring(), &informers, writers))
                }
            });
        }
        let watched = shared.into_watched();
        Self {
            factory,
            controllers,
            watched,
        }
    }

    /// The controllers, in the order of [`ControllerName`].
    pub fn controllers(&self) -> &[Arc<dyn Runnable>] {
        &self.controllers
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
        self.controllers.iter().all(|c| c.is_idle())
    }

    /// Waits until some controller's queue changes state (never, with no
    /// controller).
    pub async fn queue_changed(&self) {
        if self.controllers.is_empty() {
            return std::future::pending().await;
        }
        let waits = self.controllers.iter().map(|c| c.queues_changed(c.queue_stats()));
        futures::future::select_all(waits).await;
    }

    /// Starts the informers and runs every controller until `shutdown` is
    /// cancelled; returns once in-flight syncs are done.
    pub async fn run(&self, shutdown: CancellationToken) {
        self.factory.start();
        futures::future::join_all(self.controllers.iter().map(|c| c.run(shutdown.clone()))).await;
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
