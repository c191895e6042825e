//! [`Controller`]: the informer handlers, the `endpoint_slice_mirroring`
//! queue and its workers, around the [`Reconciler`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ecm_informer::{HandlerRegistration, Informer, Lister};
use ecm_types::{EventRecorder, ObjectKey, ObjectWriter};
use ecm_workqueue::{
    Bucket, ItemExponentialFailure, MaxOf, QueueConfig, QueueStats, RateLimitingQueue, RetryPolicy, run_workers_until,
};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio_util::sync::CancellationToken;

use crate::error::SyncError;
use crate::handlers::{EndpointsHandler, ServiceHandler, SliceHandler};
use crate::reconciler::{DEFAULT_MAX_ENDPOINTS_PER_SUBSET, Reconciler, ReconcilerConfig};
use crate::sync::{ENDPOINTS_INDEX, SyncContext, endpoints_index};

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

/// How the controller runs, with kube-controller-manager's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Concurrent syncs (`--mirroring-concurrent-service-endpoint-syncs`,
    /// default 5, valid 1 to 50).
    pub workers: usize,
    /// Delay before a slice-triggered sync
    /// (`--mirroring-endpointslice-updates-batch-period`, default 0).
    /// Endpoints and Service events sync at once.
    pub batch_period: Duration,
    /// Most addresses mirrored per repacked subset
    /// (`--mirroring-max-endpoints-per-subset`, default 1000, valid 1 to
    /// 1000).
    pub max_endpoints_per_subset: usize,
    /// Retries of a failing sync before its key is dropped (upstream: 15).
    pub max_retries: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            workers: 5,
            batch_period: Duration::ZERO,
            max_endpoints_per_subset: DEFAULT_MAX_ENDPOINTS_PER_SUBSET,
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

    /// Sets [`max_endpoints_per_subset`](Self::max_endpoints_per_subset).
    #[must_use]
    pub fn max_endpoints_per_subset(mut self, max: usize) -> Self {
        self.max_endpoints_per_subset = max;
        self
    }

    /// Sets [`max_retries`](Self::max_retries).
    #[must_use]
    pub fn max_retries(mut self, max_retries: usize) -> Self {
        self.max_retries = max_retries;
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
    queue: RateLimitingQueue<ObjectKey>,
    context: Arc<SyncContext>,
    registrations: Arc<Vec<HandlerRegistration>>,
    /// Set once the caches are synced and the workers start.
    started: Arc<AtomicBool>,
}

impl Controller {
    /// A controller watching through `informers` and writing through
    /// `writers`. Registers its event handlers and its slice index; start
    /// the informers and call [`run`](Self::run) to make it work.
    pub fn new(config: Config, informers: &Informers, writers: Writers) -> Self {
        let listers = Listers {
            services: informers.services.lister(),
            endpoints: informers.endpoints.lister(),
            slices: informers.slices.lister(),
        };
        let mut controller = Self::from_listers(config, listers, writers);
        let queue = controller.queue.clone();
        let registrations = vec![
            informers
                .endpoints
                .add_event_handler(EndpointsHandler { queue: queue.clone() }),
            informers
                .services
                .add_event_handler(ServiceHandler { queue: queue.clone() }),
            informers.slices.add_event_handler(SliceHandler {
                queue,
                tracker: Arc::clone(controller.context.reconciler.tracker()),
                batch_period: controller.config.batch_period,
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
        // A second controller on the same store registers the same function.
        let _ = listers.slices.store().add_indexer(ENDPOINTS_INDEX, endpoints_index);
        let queue = RateLimitingQueue::new(
            QueueConfig::default().name(crate::metrics::QUEUE_NAME),
            mirroring_rate_limiter(),
        );
        let reconciler = Reconciler::new(
            ReconcilerConfig::default().max_endpoints_per_subset(config.max_endpoints_per_subset),
            writers.slices,
            writers.events,
        );
        let context = SyncContext {
            endpoints: listers.endpoints,
            services: listers.services,
            slices: listers.slices,
            reconciler,
        };
        Self {
            config,
            queue,
            context: Arc::new(context),
            registrations: Arc::default(),
            started: Arc::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The queue (named `endpoint_slice_mirroring`), for introspection.
    pub fn queue(&self) -> &RateLimitingQueue<ObjectKey> {
        &self.queue
    }

    /// The reconciler, with the tracker it shares with the slice handler.
    pub fn reconciler(&self) -> &Reconciler {
        &self.context.reconciler
    }

    /// Whether [`run`](Self::run) is past its start-up.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    /// Whether the controller has started and has nothing queued, delayed
    /// or in progress.
    pub fn is_idle(&self) -> bool {
        self.is_started() && self.queue.is_idle()
    }

    /// The state of the queue.
    pub fn queue_stats(&self) -> QueueStats {
        self.queue.stats()
    }

    /// Waits until the queue's state differs from `since`
    /// ([`queue_stats`](Self::queue_stats)).
    pub async fn queues_changed(&self, since: QueueStats) {
        self.queue.wait_until(|s| *s != since).await;
    }

    /// Queues an Endpoints key for syncing.
    pub fn enqueue(&self, key: ObjectKey) {
        self.queue.add(key);
    }

    /// Syncs one Endpoints key now, outside the queue (tests, tools).
    pub async fn sync(&self, key: &ObjectKey) -> Result<(), SyncError> {
        self.context.sync(key).await
    }

    /// Runs the controller until `shutdown` is cancelled.
    ///
    /// Waits until every informer has delivered its initial list, then runs
    /// the workers. On shutdown the queue stops taking keys and the call
    /// returns when in-flight syncs are done.
    pub async fn run(&self, shutdown: CancellationToken) {
        tokio::select! {
            () = self.wait_for_sync() => {}
            () = shutdown.cancelled() => return,
        }
        self.started.store(true, Ordering::SeqCst);
        tracing::info!(
            workers = self.config.workers,
            max_endpoints_per_subset = self.config.max_endpoints_per_subset,
            "starting endpointslice mirroring controller"
        );
        let context = Arc::clone(&self.context);
        run_workers_until(
            self.queue.clone(),
            self.config.workers,
            move |key: ObjectKey| {
                let context = Arc::clone(&context);
                async move { context.sync(&key).await }
            },
            RetryPolicy::default().max_retries(self.config.max_retries),
            shutdown.cancelled(),
        )
        .await;
        tracing::info!("endpointslice mirroring controller stopped");
    }

    /// Waits until every handler has received its informer's initial list.
    pub async fn wait_for_sync(&self) {
        for registration in self.registrations.iter() {
            registration.wait_for_sync().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Events, FakeApi, Verb, addr, endpoints, port, service, subset};
    use ecm_informer::Store;
    use ecm_types::WriteError;

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
                config.workers,
                config.batch_period,
                config.max_endpoints_per_subset,
                config.max_retries
            ),
            (5, Duration::ZERO, 1000, 15)
        );
        let tuned = Config::default()
            .workers(2)
            .batch_period(Duration::from_secs(1))
            .max_endpoints_per_subset(10)
            .max_retries(3);
        assert_eq!(
            (tuned.workers, tuned.max_endpoints_per_subset, tuned.max_retries),
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
