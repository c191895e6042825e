//! [`Controller`]: the informer handlers, the `endpoint_slice_mirroring`
//! queue and its workers, around the [`Reconciler`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ecm_controller::slices::SliceHandler;
use ecm_controller::{
    BaseConfig, Configure, ControllerCore, CoreState, EventRecorder, ObjectWriter, Runnable, StaleCacheGuard,
};
use ecm_informer::{Informer, Lister, ObjectKey};
use ecm_workqueue::{Bucket, ItemExponentialFailure, MaxOf, QueueConfig, RateLimitingQueue};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio_util::sync::CancellationToken;

use crate::error::SyncError;
use crate::handlers::{EndpointsHandler, ServiceHandler};
use crate::reconciler::{DEFAULT_MAX_ENDPOINTS_PER_SUBSET, Reconciler, ReconcilerConfig};
use crate::sync::{MANAGER, SyncContext};

/// First retry delay of a failing key (upstream's `defaultSyncBackOff`).
pub const SYNC_BACKOFF: Duration = Duration::from_secs(1);
/// Longest retry delay of a failing key (upstream's `maxSyncBackOff`).
pub const MAX_SYNC_BACKOFF: Duration = Duration::from_secs(100);

/// The mirroring controller's rate limiter: the larger of a per-key
/// exponential backoff from 1 s to 100 s and a 10 qps / 100 burst bucket
/// shared by all keys.
pub fn mirroring_rate_limiter() -> MaxOf<ObjectKey> {
    MaxOf::new(vec![
        Box::new(ItemExponentialFailure::new(SYNC_BACKOFF, MAX_SYNC_BACKOFF)),
        Box::new(Bucket::new(10.0, 100)),
    ])
}

/// How the controller runs, with kube-controller-manager's defaults:
/// `--mirroring-concurrent-service-endpoint-syncs` (5, valid 1 to 50)
/// workers, slice-triggered syncs delayed by
/// `--mirroring-endpointslice-updates-batch-period` (0; Endpoints and
/// Service events sync at once), 15 retries, and
/// `--mirroring-max-endpoints-per-subset`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Workers, batch period (slice events), retries.
    pub base: BaseConfig,
    /// Most addresses mirrored per repacked subset
    /// (`--mirroring-max-endpoints-per-subset`, default 1000, valid 1 to
    /// 1000).
    pub max_endpoints_per_subset: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            base: BaseConfig::default(),
            max_endpoints_per_subset: DEFAULT_MAX_ENDPOINTS_PER_SUBSET,
        }
    }
}

impl Configure for Config {
    fn base_mut(&mut self) -> &mut BaseConfig {
        &mut self.base
    }
}

impl Config {
    /// Sets [`max_endpoints_per_subset`](Self::max_endpoints_per_subset).
    #[must_use]
    pub fn max_endpoints_per_subset(mut self, max: usize) -> Self {
        self.max_endpoints_per_subset = max;
        self
    }
}

/// The informers the controller watches through. The slice informer may be
/// the one the EndpointSlice controller uses: both register their own
/// handlers and differently named indexes on it.
pub struct Informers {
    /// Services.
    pub services: Informer<Service>,
    /// Endpoints.
    pub endpoints: Informer<Endpoints>,
    /// EndpointSlices.
    pub slices: Informer<EndpointSlice>,
}

/// What the controller writes through.
pub struct Writers {
    /// Creates, updates and deletes EndpointSlices.
    pub slices: Arc<dyn ObjectWriter<EndpointSlice>>,
    /// Records events (source component
    /// [`EVENT_SOURCE_COMPONENT`](crate::events::EVENT_SOURCE_COMPONENT)).
    pub events: Arc<dyn EventRecorder>,
}

/// The listers a controller reads, for [`Controller::from_listers`].
pub struct Listers {
    /// Services.
    pub services: Lister<Service>,
    /// Endpoints.
    pub endpoints: Lister<Endpoints>,
    /// EndpointSlices.
    pub slices: Lister<EndpointSlice>,
}

/// The EndpointSlice mirroring controller. Cheap to clone; clones share the
/// queue.
#[derive(Clone)]
pub struct Controller {
    config: Config,
    core: ControllerCore<ObjectKey>,
    context: Arc<SyncContext>,
}

impl Controller {
    /// A controller watching through `informers` and writing through
    /// `writers`. Registers its event handlers and its slice index; start
    /// the informers and call [`run`](Runnable::run) to make it work.
    pub fn new(config: Config, informers: &Informers, writers: Writers) -> Self {
        let listers = Listers {
            services: informers.services.lister(),
            endpoints: informers.endpoints.lister(),
            slices: informers.slices.lister(),
        };
        let controller = Self::from_listers(config, listers, writers);
        let (core, queue) = (&controller.core, controller.core.queue());
        core.register(
            informers
                .endpoints
                .add_event_handler(EndpointsHandler { queue: queue.clone() }),
        );
        core.register(
            informers
                .services
                .add_event_handler(ServiceHandler { queue: queue.clone() }),
        );
        core.register(informers.slices.add_event_handler(SliceHandler {
            queue: queue.clone(),
            manager: MANAGER,
            guard: Arc::clone(&controller.context.stale),
            delay: controller.config.base.batch_period,
            wake_from: None,
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
            mirroring_rate_limiter(),
        );
        let reconciler = Reconciler::new(
            ReconcilerConfig::default().max_endpoints_per_subset(config.max_endpoints_per_subset),
            writers.slices,
            writers.events,
        );
        let stale = Arc::new(StaleCacheGuard::new(Arc::clone(reconciler.tracker())));
        let context = SyncContext {
            endpoints: listers.endpoints,
            services: listers.services,
            slices: listers.slices,
            reconciler,
            stale,
        };
        Self {
            config,
            core: ControllerCore::new(queue),
            context: Arc::new(context),
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The queue (named `endpoint_slice_mirroring`), for introspection.
    pub fn queue(&self) -> &RateLimitingQueue<ObjectKey> {
        self.core.queue()
    }

    /// The reconciler, with the tracker it shares with the slice handler.
    pub fn reconciler(&self) -> &Reconciler {
        &self.context.reconciler
    }

    /// Queues an Endpoints key for syncing.
    pub fn enqueue(&self, key: ObjectKey) {
        self.core.queue().add(key);
    }

    /// Syncs one Endpoints key now, outside the queue (tests, tools).
    pub async fn sync(&self, key: &ObjectKey) -> Result<(), SyncError> {
        self.context.sync(key).await
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

    /// Runs until `shutdown` is cancelled: waits for the caches, then runs
    /// the workers.
    async fn run(&self, shutdown: CancellationToken) {
        let context = Arc::clone(&self.context);
        let sync = move |key: ObjectKey| {
            let context = Arc::clone(&context);
            async move { context.sync(&key).await }
        };
        let on_synced = || {
            tracing::info!(
                workers = self.config.base.workers,
                max_endpoints_per_subset = self.config.max_endpoints_per_subset,
                "starting endpointslice mirroring controller"
            );
        };
        self.core
            .run(&shutdown, &self.config.base, on_synced, sync, std::future::ready(()))
            .await;
        tracing::info!("endpointslice mirroring controller stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Events, FakeApi, Verb, addr, endpoints, port, service, subset};
    use ecm_controller::WriteError;
    use ecm_informer::Store;

    fn controller(api: &Arc<FakeApi>, config: Config) -> (Controller, Store<Endpoints>, Store<Service>) {
        let (eps, svcs) = (Store::new(), Store::new());
        let controller = Controller::from_listers(
            config,
            Listers {
                services: Lister::new(svcs.clone()),
                endpoints: Lister::new(eps.clone()),
                slices: Lister::new(Store::new()),
            },
            Writers {
                slices: Arc::clone(api) as Arc<dyn ObjectWriter<EndpointSlice>>,
                events: Events::new() as Arc<dyn EventRecorder>,
            },
        );
        (controller, eps, svcs)
    }

    #[test]
    fn defaults_are_kube_controller_managers() {
        let config = Config::default();
        assert_eq!(
            (
                config.base.workers,
                config.base.batch_period,
                config.max_endpoints_per_subset,
                config.base.max_retries
            ),
            (5, Duration::ZERO, 1000, 15)
        );
        let tuned = Config::default()
            .workers(2)
            .batch_period(Duration::from_secs(1))
            .max_endpoints_per_subset(10)
            .max_retries(3);
        assert_eq!(
            (
                tuned.base.workers,
                tuned.max_endpoints_per_subset,
                tuned.base.max_retries
            ),
            (2, 10, 3)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failed_syncs_are_retried_with_backoff_until_they_succeed() {
        let api = FakeApi::new();
        let (controller, eps, svcs) = controller(&api, Config::default());
        svcs.insert(Arc::new(service("foo")));
        eps.insert(Arc::new(endpoints(
            "foo",
            vec![subset(vec![addr("10.0.0.1")], vec![], vec![port("http", 80, "TCP")])],
        )));
        api.fail_next(Verb::Create, WriteError::Transport("down".into()));
        api.fail_next(Verb::Create, WriteError::Transport("down".into()));
        let shutdown = CancellationToken::new();
        let run = tokio::spawn({
            let (controller, shutdown) = (controller.clone(), shutdown.clone());
            async move { controller.run(shutdown).await }
        });
        controller.enqueue(ObjectKey::new("ns", "foo"));
        let started = tokio::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(60), async {
            while !controller.is_idle() || api.calls().is_empty() {
                controller.queues_changed(controller.queue_stats()).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(api.summary(), [(Verb::Create, "foo-0".to_owned())]);
        // Two failures: retried after 1 s, then 2 s.
        assert!(started.elapsed() >= Duration::from_secs(3), "{:?}", started.elapsed());
        shutdown.cancel();
        run.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_that_keeps_failing_is_dropped_after_max_retries() {
        let api = FakeApi::new();
        let (controller, eps, svcs) = controller(&api, Config::default().max_retries(2));
        svcs.insert(Arc::new(service("foo")));
        eps.insert(Arc::new(endpoints(
            "foo",
            vec![subset(vec![addr("10.0.0.1")], vec![], vec![port("http", 80, "TCP")])],
        )));
        for _ in 0..4 {
            api.fail_next(Verb::Create, WriteError::Transport("down".into()));
        }
        let shutdown = CancellationToken::new();
        let run = tokio::spawn({
            let (controller, shutdown) = (controller.clone(), shutdown.clone());
            async move { controller.run(shutdown).await }
        });
        controller.enqueue(ObjectKey::new("ns", "foo"));
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert!(controller.is_idle());
        assert!(api.calls().is_empty(), "3 attempts failed, then dropped");
        controller.enqueue(ObjectKey::new("ns", "foo"));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(api.calls().is_empty(), "the 4th failure");
        shutdown.cancel();
        run.await.unwrap();
    }
}
