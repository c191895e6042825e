//! [`Controller`]: the informer handlers, the `endpoint_slice` queue and its
//! workers, and the topology worker, around the [`Reconciler`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ecm_informer::{HandlerRegistration, Informer, Lister};
use ecm_types::wellknown::DEFAULT_MAX_ENDPOINTS_PER_SLICE;
use ecm_types::{EventRecorder, ObjectKey, ObjectWriter, PodProjection, TriggerTimeTracker};
use ecm_workqueue::{
    QueueConfig, QueueStats, RateLimitingQueue, RetryPolicy, default_controller_rate_limiter,
    endpoint_slice_controller_rate_limiter, run_workers_until,
};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio_util::sync::CancellationToken;

use crate::handlers::{NodeHandler, SliceHandler, TopologyItem, pod_handler, service_handler};
use crate::nodes::{node_lookup, refresh_topology};
use crate::reconciler::{Reconciler, ReconcilerConfig};
use crate::sync::{SERVICE_INDEX, SyncContext, SyncError, service_index};

/// How the controller runs, with kube-controller-manager's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Concurrent Service syncs (`--concurrent-service-endpoint-syncs`,
    /// default 5, valid 1 to 50).
    pub workers: usize,
    /// Delay before a pod change is synced, so that a burst of pod changes
    /// of one Service costs one sync (`--endpointslice-updates-batch-period`,
    /// default 0). Slice-triggered syncs wait at least 1 s.
    pub batch_period: Duration,
    /// Most endpoints in one slice (`--max-endpoints-per-slice`, default
    /// 100, valid 1 to 1000).
    pub max_endpoints_per_slice: usize,
    /// Retries of a failing sync before its key is dropped (upstream: 15).
    pub max_retries: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            workers: 5,
            batch_period: Duration::ZERO,
            max_endpoints_per_slice: DEFAULT_MAX_ENDPOINTS_PER_SLICE,
            max_retries: 15,
        }
    }
}

impl Config {
    /// Sets [`workers`](Self::workers).
    #[must_use]
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Sets [`batch_period`](Self::batch_period).
    #[must_use]
    pub fn batch_period(mut self, batch_period: Duration) -> Self {
        self.batch_period = batch_period;
        self
    }

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
    queue: RateLimitingQueue<ObjectKey>,
    topology_queue: RateLimitingQueue<TopologyItem>,
    context: Arc<SyncContext>,
    nodes: Lister<Node>,
    registrations: Arc<Vec<HandlerRegistration>>,
    /// Set once the caches are synced and the topology cache has its nodes.
    started: Arc<AtomicBool>,
}

impl Controller {
    /// A controller watching through `informers` and writing through
    /// `writers`. Registers its event handlers and the slice index; start
    /// the informers and call [`run`](Self::run) to make it work.
    pub fn new(config: Config, informers: &Informers, writers: Writers) -> Self {
        let listers = Listers {
            services: informers.services.lister(),
            pods: informers.pods.lister(),
            slices: informers.slices.lister(),
            nodes: informers.nodes.lister(),
        };
        let mut controller = Self::from_listers(config, listers, writers);
        let queue = controller.queue.clone();
        let registrations = vec![
            informers.services.add_event_handler(service_handler(queue.clone())),
            informers.pods.add_event_handler(pod_handler(
                queue.clone(),
                informers.services.lister(),
                controller.config.batch_period,
            )),
            informers.slices.add_event_handler(SliceHandler {
                queue,
                tracker: Arc::clone(controller.context.reconciler.tracker()),
                delay: SliceHandler::delay(controller.config.batch_period),
                stale: Arc::clone(&controller.context.stale),
                slices: informers.slices.lister(),
            }),
            informers.nodes.add_event_handler(NodeHandler {
                queue: controller.topology_queue.clone(),
            }),
        ];
        controller.registrations = Arc::new(registrations);
        controller
    }

    /// A controller reading from the given listers, with no event handlers:
    /// nothing is queued unless [`enqueue`](Self::enqueue) is called. For
    /// tests with hand-filled stores. Registers the slice index on the
    /// slice store.
    pub fn from_listers(config: Config, listers: Listers, writers: Writers) -> Self {
        crate::metrics::describe();
        // Registering twice (a second controller on the same informer) is
        // harmless: the index function is the same.
        let _ = listers.slices.store().add_indexer(SERVICE_INDEX, service_index);
        let queue = RateLimitingQueue::new(
            QueueConfig::default().name(crate::metrics::QUEUE_NAME),
            endpoint_slice_controller_rate_limiter(),
        );
        let topology_queue = RateLimitingQueue::new(QueueConfig::default(), default_controller_rate_limiter());
        let reconciler = Reconciler::new(
            ReconcilerConfig::default().max_endpoints_per_slice(config.max_endpoints_per_slice),
            writers.slices,
            Arc::clone(&writers.events),
            Arc::new(node_lookup(listers.nodes.clone())),
        );
        let context = SyncContext {
            services: listers.services,
            pods: listers.pods,
            slices: listers.slices,
            reconciler,
            events: writers.events,
            trigger_times: TriggerTimeTracker::new(),
            stale: Arc::default(),
        };
        Self {
            config,
            queue,
            topology_queue,
            context: Arc::new(context),
            nodes: listers.nodes,
            registrations: Arc::default(),
            started: Arc::default(),
        }
    }

    /// The Service queue (named `endpoint_slice`), for introspection.
    pub fn queue(&self) -> &RateLimitingQueue<ObjectKey> {
        &self.queue
    }

    /// The reconciler, with the tracker and topology cache it shares with
    /// the handlers.
    pub fn reconciler(&self) -> &Reconciler {
        &self.context.reconciler
    }

    /// Whether [`run`](Self::run) is past its start-up.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    /// Whether the controller has started and has nothing queued, delayed
    /// or in progress, in either queue.
    pub fn is_idle(&self) -> bool {
        self.is_started() && self.queue.is_idle() && self.topology_queue.is_idle()
    }

    /// Waits until either queue's state differs from `since`
    /// ([`queue_stats`](Self::queue_stats)).
    pub async fn queues_changed(&self, since: (QueueStats, QueueStats)) {
        tokio::select! {
            () = self.queue.wait_until(|s| *s != since.0) => {}
            () = self.topology_queue.wait_until(|s| *s != since.1) => {}
        }
    }

    /// The state of the Service queue and the topology queue.
    pub fn queue_stats(&self) -> (QueueStats, QueueStats) {
        (self.queue.stats(), self.topology_queue.stats())
    }

    /// Queues a Service key for syncing.
    pub fn enqueue(&self, key: ObjectKey) {
        self.queue.add(key);
    }

    /// Syncs one Service now, outside the queue (tests, tools).
    pub async fn sync(&self, key: &ObjectKey) -> Result<(), SyncError> {
        self.context.sync(key).await
    }

    /// Reads the cached nodes into the topology cache now, and queues the
    /// Services whose hints no longer fit (what the topology worker does).
    pub fn refresh_topology(&self) {
        refresh_topology(&self.nodes, self.context.reconciler.topology(), &self.queue);
    }

    /// Runs the controller until `shutdown` is cancelled.
    ///
    /// Waits until every informer has delivered its initial list, reads the
    /// nodes into the topology cache before any Service is synced (upstream
    /// starts both at once, so Services synced first get no hints until a
    /// later sync), then runs the Service workers and the topology worker.
    /// On shutdown the queues stop taking keys and the call returns when
    /// in-flight syncs are done.
    pub async fn run(&self, shutdown: CancellationToken) {
        tokio::select! {
            () = self.wait_for_sync() => {}
            () = shutdown.cancelled() => return,
        }
        self.refresh_topology();
        self.started.store(true, Ordering::SeqCst);
        tracing::info!(
            workers = self.config.workers,
            max_endpoints_per_slice = self.config.max_endpoints_per_slice,
            "starting endpointslice controller"
        );
        let context = Arc::clone(&self.context);
        let services = run_workers_until(
            self.queue.clone(),
            self.config.workers,
            move |key: ObjectKey| {
                let context = Arc::clone(&context);
                async move { context.sync(&key).await }
            },
            RetryPolicy::default().max_retries(self.config.max_retries),
            shutdown.cancelled(),
        );
        let (nodes, topology, queue) = (
            self.nodes.clone(),
            Arc::clone(self.context.reconciler.topology()),
            self.queue.clone(),
        );
        let topology_worker = run_workers_until(
            self.topology_queue.clone(),
            1,
            move |(): TopologyItem| {
                refresh_topology(&nodes, &topology, &queue);
                std::future::ready(Ok::<(), std::convert::Infallible>(()))
            },
            RetryPolicy::default().max_retries(self.config.max_retries),
            shutdown.cancelled(),
        );
        tokio::join!(services, topology_worker);
        tracing::info!("endpointslice controller stopped");
    }

    /// Waits until every handler has received its informer's initial list.
    pub async fn wait_for_sync(&self) {
        for registration in self.registrations.iter() {
            registration.wait_for_sync().await;
        }
    }
}
