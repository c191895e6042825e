//! [`Controller`]: the informer handlers, the `endpoint_slice` queue and its
//! workers, and the topology worker, around the [`Reconciler`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ecm_controller::slices::SliceHandler;
use ecm_controller::{
    BaseConfig, Configure, ControllerCore, CoreState, EventRecorder, ObjectWriter, Runnable, StaleCacheGuard,
    TriggerTimeTracker, own_key_handler, pod_handler,
};
use ecm_informer::{Informer, Lister, ObjectKey};
use ecm_types::PodProjection;
use ecm_types::wellknown::DEFAULT_MAX_ENDPOINTS_PER_SLICE;
use ecm_workqueue::{
    Bucket, ItemExponentialFailure, MaxOf, QueueConfig, RateLimitingQueue, default_controller_rate_limiter,
    run_workers_until,
};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio_util::sync::CancellationToken;

use crate::error::SyncError;
use crate::handlers::{NodeHandler, TopologyItem, slice_delay};
use crate::nodes::{node_lookup, refresh_topology};
use crate::reconciler::{Reconciler, ReconcilerConfig};
use crate::sync::{MANAGER, SyncContext};

/// The controller's rate limiter: the larger of a per-key exponential
/// back-off from 1 s to 1000 s and a 10 qps / 100 burst bucket shared by all
/// keys (upstream's `workqueue.NewTypedMaxOfRateLimiter` in
/// `NewController`).
pub fn endpoint_slice_rate_limiter() -> MaxOf<ObjectKey> {
    MaxOf::new(vec![
        Box::new(ItemExponentialFailure::new(
            Duration::from_secs(1),
            Duration::from_secs(1000),
        )),
        Box::new(Bucket::new(10.0, 100)),
    ])
}

/// How the controller runs, with kube-controller-manager's defaults:
/// `--concurrent-service-endpoint-syncs` (5, valid 1 to 50) workers, pod
/// changes batched for `--endpointslice-updates-batch-period` (0;
/// slice-triggered syncs wait at least 1 s), 15 retries, and
/// `--max-endpoints-per-slice`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Workers, batch period, retries.
    pub base: BaseConfig,
    /// Most endpoints in one slice (`--max-endpoints-per-slice`, default
    /// 100, valid 1 to 1000).
    pub max_endpoints_per_slice: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            base: BaseConfig::default(),
            max_endpoints_per_slice: DEFAULT_MAX_ENDPOINTS_PER_SLICE,
        }
    }
}

impl Configure for Config {
    fn base_mut(&mut self) -> &mut BaseConfig {
        &mut self.base
    }
}

impl Config {
    /// Sets [`max_endpoints_per_slice`](Self::max_endpoints_per_slice).
    #[must_use]
    pub fn max_endpoints_per_slice(mut self, max: usize) -> Self {
        self.max_endpoints_per_slice = max;
        self
    }
}

/// The informers the controller watches through. Pods are cached as the
/// compact [`PodProjection`]; nodes are best cached through
/// [`compact_node`](crate::compact_node).
pub struct Informers {
    /// Services.
    pub services: Informer<Service>,
    /// Pods, projected.
    pub pods: Informer<Pod, PodProjection>,
    /// EndpointSlices.
    pub slices: Informer<EndpointSlice>,
    /// Nodes (zones, readiness, allocatable CPU).
    pub nodes: Informer<Node>,
}

/// What the controller writes through.
pub struct Writers {
    /// Creates, updates and deletes EndpointSlices.
    pub slices: Arc<dyn ObjectWriter<EndpointSlice>>,
    /// Records events.
    pub events: Arc<dyn EventRecorder>,
}

/// The listers a controller reads, for [`Controller::from_listers`].
pub struct Listers {
    /// Services.
    pub services: Lister<Service>,
    /// Pods, projected.
    pub pods: Lister<PodProjection>,
    /// EndpointSlices.
    pub slices: Lister<EndpointSlice>,
    /// Nodes.
    pub nodes: Lister<Node>,
}

/// The EndpointSlice controller. Cheap to clone; clones share the queues.
#[derive(Clone)]
pub struct Controller {
    config: Config,
    core: ControllerCore<ObjectKey>,
    topology_queue: RateLimitingQueue<TopologyItem>,
    context: Arc<SyncContext>,
    nodes: Lister<Node>,
}

impl Controller {
    /// A controller watching through `informers` and writing through
    /// `writers`. Registers its event handlers and the slice index; start
    /// the informers and call [`run`](Runnable::run) to make it work.
    pub fn new(config: Config, informers: &Informers, writers: Writers) -> Self {
        let listers = Listers {
            services: informers.services.lister(),
            pods: informers.pods.lister(),
            slices: informers.slices.lister(),
            nodes: informers.nodes.lister(),
        };
        let controller = Self::from_listers(config, listers, writers);
        let (core, queue) = (&controller.core, controller.core.queue());
        let batch_period = controller.config.base.batch_period;
        core.register(informers.services.add_event_handler(own_key_handler(queue.clone())));
        core.register(informers.pods.add_event_handler(pod_handler(
            queue.clone(),
            informers.services.lister(),
            batch_period,
        )));
        core.register(informers.slices.add_event_handler(SliceHandler {
            queue: queue.clone(),
            manager: MANAGER,
            guard: Arc::clone(&controller.context.stale),
            delay: slice_delay(batch_period),
            wake_from: Some(informers.slices.lister()),
        }));
        core.register(informers.nodes.add_event_handler(NodeHandler {
            queue: controller.topology_queue.clone(),
        }));
        controller
    }

    /// A controller reading from the given listers, with no event handlers:
    /// nothing is queued unless [`enqueue`](Self::enqueue) is called. For
    /// tests with hand-filled stores. Registers the slice index on the
    /// slice store.
    pub fn from_listers(config: Config, listers: Listers, writers: Writers) -> Self {
        crate::metrics::describe();
        MANAGER.add_index(listers.slices.store());
        let queue = RateLimitingQueue::new(
            QueueConfig::default().name(crate::metrics::QUEUE_NAME),
            endpoint_slice_rate_limiter(),
        );
        let topology_queue = RateLimitingQueue::new(QueueConfig::default(), default_controller_rate_limiter());
        let reconciler = Reconciler::new(
            ReconcilerConfig::default().max_endpoints_per_slice(config.max_endpoints_per_slice),
            writers.slices,
            Arc::clone(&writers.events),
            Arc::new(node_lookup(listers.nodes.clone())),
        );
        let stale = Arc::new(StaleCacheGuard::new(Arc::clone(reconciler.tracker())));
        let context = SyncContext {
            services: listers.services,
            pods: listers.pods,
            slices: listers.slices,
            reconciler,
            events: writers.events,
            trigger_times: TriggerTimeTracker::new(),
            stale,
        };
        Self {
            config,
            core: ControllerCore::with_queues(queue, vec![Arc::new(topology_queue.clone())]),
            topology_queue,
            context: Arc::new(context),
            nodes: listers.nodes,
        }
    }

    /// The Service queue (named `endpoint_slice`), for introspection.
    pub fn queue(&self) -> &RateLimitingQueue<ObjectKey> {
        self.core.queue()
    }

    /// The reconciler, with the tracker and topology cache it shares with
    /// the handlers.
    pub fn reconciler(&self) -> &Reconciler {
        &self.context.reconciler
    }

    /// Queues a Service key for syncing.
    pub fn enqueue(&self, key: ObjectKey) {
        self.core.queue().add(key);
    }

    /// Syncs one Service now, outside the queue (tests, tools).
    pub async fn sync(&self, key: &ObjectKey) -> Result<(), SyncError> {
        self.context.sync(key).await
    }

    /// Reads the cached nodes into the topology cache now, and queues the
    /// Services whose hints no longer fit (what the topology worker does).
    pub fn refresh_topology(&self) {
        refresh_topology(&self.nodes, self.context.reconciler.topology(), self.core.queue());
    }
}

#[async_trait]
impl Runnable for Controller {
    fn name(&self) -> &'static str {
        crate::events::EVENT_SOURCE_COMPONENT
    }

    fn state(&self) -> &CoreState {
        self.core.state()
    }

    /// Runs until `shutdown` is cancelled: waits for the caches, reads the
    /// nodes into the topology cache before any Service is synced (upstream
    /// starts both at once, so Services synced first get no hints until a
    /// later sync), then runs the Service workers and the topology worker.
    async fn run(&self, shutdown: CancellationToken) {
        let context = Arc::clone(&self.context);
        let sync = move |key: ObjectKey| {
            let context = Arc::clone(&context);
            async move { context.sync(&key).await }
        };
        let on_synced = || {
            self.refresh_topology();
            tracing::info!(
                workers = self.config.base.workers,
                max_endpoints_per_slice = self.config.max_endpoints_per_slice,
                "starting endpointslice controller"
            );
        };
        let (nodes, topology, queue) = (
            self.nodes.clone(),
            Arc::clone(self.context.reconciler.topology()),
            self.core.queue().clone(),
        );
        let topology_worker = run_workers_until(
            self.topology_queue.clone(),
            1,
            move |(): TopologyItem| {
                refresh_topology(&nodes, &topology, &queue);
                std::future::ready(Ok::<(), std::convert::Infallible>(()))
            },
            self.config.base.retry_policy(),
            shutdown.cancelled(),
        );
        self.core
            .run(&shutdown, &self.config.base, on_synced, sync, topology_worker)
            .await;
        tracing::info!("endpointslice controller stopped");
    }
}
