//! [`Controller`]: the informer handlers, the `endpoint_slice_mirroring`
//! queue and its workers, around the [`Reconciler`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ecm_controller::slices::{SliceConfig, SliceHandler};
use ecm_controller::{ControllerCore, CoreState, Runnable, StaleCacheGuard, SyncHandler, Writers};
use ecm_informer::{Informer, ObjectKey};
use ecm_workqueue::{Bucket, ItemExponentialFailure, MaxOf};
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
/// Service events sync at once), 15 retries, and at most
/// `--mirroring-max-endpoints-per-subset` (1000, valid 1 to 1000) addresses
/// mirrored per repacked subset, as
/// [`max_endpoints_per_slice`](SliceConfig::max_endpoints_per_slice). Set
/// through [`Configure`](ecm_controller::Configure).
pub type Config = SliceConfig<DEFAULT_MAX_ENDPOINTS_PER_SUBSET>;

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

/// The EndpointSlice mirroring controller. Cheap to clone; clones share the
/// queue.
#[derive(Clone)]
pub struct Controller {
    core: ControllerCore<ObjectKey>,
    pub(crate) context: Arc<SyncContext>,
}

impl Controller {
    /// A controller reading through `informers` and writing EndpointSlices
    /// and events (source component
    /// [`EVENT_SOURCE_COMPONENT`](crate::EVENT_SOURCE_COMPONENT)) through
    /// `writers`. Registers its event handlers and its slice index; start
    /// the informers and call [`run`](Runnable::run) to make it work. In
    /// tests, informers [detached](ecm_informer::Informer::detached) from
    /// any API server work the same.
    pub fn new(config: Config, informers: &Informers, writers: Writers<EndpointSlice>) -> Self {
        crate::metrics::describe();
        let core = ControllerCore::named(crate::metrics::QUEUE_NAME, mirroring_rate_limiter(), config.base);
        let queue = core.queue().clone();
        let reconciler = Reconciler::new(
            ReconcilerConfig::default().max_endpoints_per_subset(config.max_endpoints_per_slice),
            writers,
        );
        let stale = Arc::new(StaleCacheGuard::new(Arc::clone(reconciler.tracker())));
        core.register(informers.endpoints.add_event_handler(EndpointsHandler {
            queue: queue.clone(),
            services: informers.services.lister(),
            slices: informers.slices.lister(),
        }));
        core.register(
            informers
                .services
                .add_event_handler(ServiceHandler { queue: queue.clone() }),
        );
        let slices = SliceHandler {
            queue,
            manager: MANAGER,
            guard: Arc::clone(&stale),
            delay: core.config().batch_period,
            wake_from: Some(informers.slices.lister()),
            changes: None,
        };
        core.register(slices.register(&informers.slices));
        let context = SyncContext {
            endpoints: informers.endpoints.lister(),
            services: informers.services.lister(),
            slices: informers.slices.lister(),
            reconciler,
            stale,
        };
        Self {
            core,
            context: Arc::new(context),
        }
    }

    /// The shared core: its queue and state, for tests and tools.
    pub fn core(&self) -> &ControllerCore<ObjectKey> {
        &self.core
    }

    /// Syncs one Endpoints key now, outside the queue (tests, tools).
    pub async fn sync(&self, key: &ObjectKey) -> Result<(), SyncError> {
        self.context.sync_recorded(key).await
    }
}

#[async_trait]
impl Runnable for Controller {
    fn state(&self) -> &CoreState {
        self.core.state()
    }

    /// Runs until `shutdown` is cancelled: waits for the caches, then runs
    /// the workers.
    async fn run(&self, shutdown: CancellationToken) {
        let context = Arc::clone(&self.context);
        self.core.run(&shutdown, || {}, context, std::future::ready(())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Events, FakeApi, Verb, addr, endpoints, port, service, subset};
    use ecm_controller::{Configure, EventRecorder, ObjectWriter, WriteError};
    use ecm_informer::Store;

    fn controller(api: &Arc<FakeApi>, config: Config) -> (Controller, Store<Endpoints>, Store<Service>) {
        let (eps, svcs) = (Store::new(), Store::new());
        let controller = Controller::new(
            config,
            &Informers {
                services: Informer::detached(svcs.clone()),
                endpoints: Informer::detached(eps.clone()),
                slices: Informer::detached(Store::new()),
            },
            Writers {
                objects: Arc::clone(api) as Arc<dyn ObjectWriter<EndpointSlice>>,
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
                config.max_endpoints_per_slice,
                config.base.max_retries
            ),
            (5, Duration::ZERO, 1000, 15)
        );
        let tuned = Config::default()
            .workers(2)
            .batch_period(Duration::from_secs(1))
            .max_endpoints_per_slice(10)
            .max_retries(3);
        assert_eq!(
            (
                tuned.base.workers,
                tuned.max_endpoints_per_slice,
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
        controller.core().queue().add(ObjectKey::new("ns", "foo"));
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
        controller.core().queue().add(ObjectKey::new("ns", "foo"));
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert!(controller.is_idle());
        assert!(api.calls().is_empty(), "3 attempts failed, then dropped");
        controller.core().queue().add(ObjectKey::new("ns", "foo"));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(api.calls().is_empty(), "the 4th failure");
        shutdown.cancel();
        run.await.unwrap();
    }
}
