//! [`Controller`]: the informer handlers, the `endpoint_slice` queue and its
//! workers, and the topology worker, around the [`Reconciler`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ecm_controller::slices::{SliceConfig, SliceHandler};
use ecm_controller::{
    ChangeTracker, ControllerCore, CoreState, Runnable, StaleCacheGuard, SyncHandler, TriggerTimeTracker, Writers,
    watch_services_and_pods,
};
use ecm_informer::{Informer, Lister, ObjectKey};
use ecm_types::PodProjection;
use ecm_types::wellknown::DEFAULT_MAX_ENDPOINTS_PER_SLICE;
use ecm_workqueue::{
    Bucket, ItemExponentialFailure, MaxOf, QueueConfig, RateLimitingQueue, default_controller_rate_limiter,
    run_workers_until,
};
use k8s_openapi::api::core::v1::{Node, Service};
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
/// `--max-endpoints-per-slice` (100, valid 1 to 1000). Set through
/// [`Configure`](ecm_controller::Configure).
pub type Config = SliceConfig<DEFAULT_MAX_ENDPOINTS_PER_SLICE>;

/// The informers the controller watches through. Pods are cached as the
/// compact [`PodProjection`]; nodes are best cached through
/// [`compact_node`](crate::compact_node).
pub struct Informers {
    /// Services.
    pub services: Informer<Service>,
    /// Pods, projected.
    pub pods: Informer<PodProjection>,
    /// EndpointSlices.
    pub slices: Informer<EndpointSlice>,
    /// Nodes (zones, readiness, allocatable CPU).
    pub nodes: Informer<Node>,
}

/// The EndpointSlice controller. Cheap to clone; clones share the queues.
#[derive(Clone)]
pub struct Controller {
    core: ControllerCore<ObjectKey>,
    topology_queue: RateLimitingQueue<TopologyItem>,
    pub(crate) context: Arc<SyncContext>,
    nodes: Lister<Node>,
}

impl Controller {
    /// A controller reading through `informers` and writing EndpointSlices
    /// and events (source component
    /// [`EVENT_SOURCE_COMPONENT`](crate::EVENT_SOURCE_COMPONENT)) through
    /// `writers`. Registers its event handlers and the slice index; start
    /// the informers and call [`run`](Runnable::run) to make it work. In
    /// tests, informers [detached](ecm_informer::Informer::detached) from
    /// any API server work the same.
    pub fn new(config: Config, informers: &Informers, writers: Writers<EndpointSlice>) -> Self {
        crate::metrics::describe();
        let queue = RateLimitingQueue::new(
            QueueConfig::default().name(crate::metrics::QUEUE_NAME),
            endpoint_slice_rate_limiter(),
        );
        let topology_queue = RateLimitingQueue::new(QueueConfig::default(), default_controller_rate_limiter());
        let reconciler = Reconciler::new(
            ReconcilerConfig::default().max_endpoints_per_slice(config.max_endpoints_per_slice),
            writers,
            Arc::new(node_lookup(informers.nodes.lister())),
        );
        let stale = Arc::new(StaleCacheGuard::new(Arc::clone(reconciler.tracker())));
        let (batch_period, incremental) = (config.base.batch_period, config.base.incremental);
        let changes = incremental.enabled().then(|| Arc::new(ChangeTracker::new()));
        let core = ControllerCore::with_queues(queue.clone(), config.base, vec![Arc::new(topology_queue.clone())]);
        watch_services_and_pods(
            &core,
            &informers.services,
            &informers.pods,
            batch_period,
            changes.as_ref(),
        );
        let slices = SliceHandler {
            queue,
            manager: MANAGER,
            guard: Arc::clone(&stale),
            delay: slice_delay(batch_period),
            wake_from: Some(informers.slices.lister()),
            changes: changes.clone(),
        };
        core.register(slices.register(&informers.slices));
        core.register(informers.nodes.add_event_handler(NodeHandler {
            queue: topology_queue.clone(),
            changes: changes.clone(),
        }));
        let context = SyncContext {
            services: informers.services.lister(),
            pods: informers.pods.lister(),
            slices: informers.slices.lister(),
            reconciler,
            trigger_times: TriggerTimeTracker::new(),
            stale,
            changes,
            incremental,
        };
        Self {
            core,
            topology_queue,
            context: Arc::new(context),
            nodes: informers.nodes.lister(),
        }
    }

    /// The shared core: its queue and state, for tests and tools.
    pub fn core(&self) -> &ControllerCore<ObjectKey> {
        &self.core
    }

    /// Syncs one Service now, outside the queue (tests, tools).
    pub async fn sync(&self, key: &ObjectKey) -> Result<(), SyncError> {
        self.context.sync_recorded(key).await
    }

    /// Reads the cached nodes into the topology cache now, and queues the
    /// Services whose hints no longer fit (what the topology worker does).
    pub fn refresh_topology(&self) {
        refresh_topology(&self.nodes, self.context.reconciler.topology(), self.core.queue());
    }
}

#[async_trait]
impl Runnable for Controller {
    fn state(&self) -> &CoreState {
        self.core.state()
    }

    /// Runs until `shutdown` is cancelled: waits for the caches, reads the
    /// nodes into the topology cache before any Service is synced (upstream
    /// starts both at once, so Services synced first get no hints until a
    /// later sync), then runs the Service workers and the topology worker.
    async fn run(&self, shutdown: CancellationToken) {
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
            self.core.config().retry_policy(),
            shutdown.cancelled(),
        );
        let context = Arc::clone(&self.context);
        let on_synced = || self.refresh_topology();
        self.core.run(&shutdown, on_synced, context, topology_worker).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecm_workqueue::RateLimiter;

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_starts_at_one_second_and_caps_at_a_thousand() {
        let limiter = endpoint_slice_rate_limiter();
        let key = ObjectKey::new("ns", "svc");
        let delays: Vec<_> = (0..4).map(|_| limiter.when(&key)).collect();
        let s = Duration::from_secs(1);
        assert_eq!(delays, [s, 2 * s, 4 * s, 8 * s]);
        for _ in 0..20 {
            limiter.when(&key);
        }
        assert_eq!(limiter.when(&key), Duration::from_secs(1000));
        limiter.forget(&key);
        assert_eq!(limiter.num_requeues(&key), 0);
    }

    #[test]
    fn defaults_are_kube_controller_managers() {
        let config = Config::default();
        assert_eq!(
            (
                config.base.workers,
                config.base.batch_period,
                config.base.max_retries,
                config.max_endpoints_per_slice
            ),
            (5, Duration::ZERO, 15, 100)
        );
    }
}
