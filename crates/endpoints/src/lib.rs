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
//! | `handlers` (private) | informer events → queue keys |
//! | [`sync`] | `sync(key)`: the only place that writes |
//! | [`desired`] | the desired object, and whether to write it (pure) |
//! | [`address`], [`capacity`], `ecm_types::repack` | the pure rules `desired` is made of |
//! | [`stale`] | the stale-cache guard |
//! | [`metrics`] | metric names |
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use ecm_endpoints::{Config, Controller, Informers, Writers};
//! use ecm_informer::InformerFactory;
//! use ecm_types::{KubeEventRecorder, KubeWriter, PodProjection};
//! use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = kube::Client::try_default().await?;
//! let factory = InformerFactory::new(client.clone());
//! let informers = Informers {
//!     services: factory.informer::<Service>(),
//!     pods: factory.informer_with_transform::<Pod, PodProjection, _>(PodProjection::from),
//!     endpoints: factory.informer::<Endpoints>(),
//! };
//! let writers = Writers {
//!     endpoints: Arc::new(KubeWriter::new(client.clone())),
//!     events: Arc::new(KubeEventRecorder::new(client, "endpoint-controller", "my-host")),
//! };
//! let controller = Controller::new(Config::default(), &informers, writers);
//! let shutdown = CancellationToken::new();
//! factory.start();
//! controller.run(shutdown).await;
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ecm_informer::{HandlerRegistration, Informer, Lister};
use ecm_types::wellknown::ANNOTATION_LEADER;
use ecm_types::{EventRecorder, ObjectKey, ObjectWriter, PodProjection, TriggerTimeTracker};
use ecm_workqueue::{QueueConfig, RateLimitingQueue, RetryPolicy, default_controller_rate_limiter, run_workers_until};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use tokio_util::sync::CancellationToken;

pub mod address;
pub mod capacity;
pub mod desired;
mod handlers;
pub mod metrics;
pub mod stale;
pub mod sync;

pub use sync::SyncError;

/// How the controller runs, with kube-controller-manager's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Concurrent syncs (`--concurrent-endpoint-syncs`, default 5).
    pub workers: usize,
    /// Delay before a pod change is synced, so that a burst of pod changes
    /// of one Service costs one sync (`--endpoint-updates-batch-period`,
    /// default 0: no delay).
    pub batch_period: Duration,
    /// Retries of a failing sync before its key is dropped (upstream: 15).
    pub max_retries: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            workers: 5,
            batch_period: Duration::ZERO,
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
}

/// The informers the controller watches through. Pods are cached as the
/// compact [`PodProjection`].
pub struct Informers {
    /// Services.
    pub services: Informer<Service>,
    /// Pods, projected.
    pub pods: Informer<Pod, PodProjection>,
    /// Endpoints.
    pub endpoints: Informer<Endpoints>,
}

/// What the controller writes through.
pub struct Writers {
    /// Creates, updates and deletes Endpoints objects.
    pub endpoints: Arc<dyn ObjectWriter<Endpoints>>,
    /// Records events.
    pub events: Arc<dyn EventRecorder>,
}

/// The Endpoints controller. Cheap to clone; clones share one queue.
#[derive(Clone)]
pub struct Controller {
    config: Config,
    queue: RateLimitingQueue<ObjectKey>,
    context: Arc<sync::SyncContext>,
    registrations: Arc<Vec<HandlerRegistration>>,
    /// Set once the caches are synced and the start-up sweep has queued its keys.
    started: Arc<AtomicBool>,
}

impl Controller {
    /// A controller watching through `informers` and writing through
    /// `writers`. Registers its event handlers; start the informers and call
    /// [`run`](Self::run) to make it work.
    pub fn new(config: Config, informers: &Informers, writers: Writers) -> Self {
        let mut controller = Self::from_listers(
            config,
            informers.services.lister(),
            informers.pods.lister(),
            informers.endpoints.lister(),
            writers,
        );
        let queue = controller.queue.clone();
        let registrations = vec![
            informers
                .services
                .add_event_handler(handlers::service_handler(queue.clone())),
            informers.pods.add_event_handler(handlers::pod_handler(
                queue.clone(),
                informers.services.lister(),
                controller.config.batch_period,
            )),
            informers.endpoints.add_event_handler(handlers::EndpointsHandler {
                queue,
                stale: Arc::clone(&controller.context.stale),
            }),
        ];
        controller.registrations = Arc::new(registrations);
        controller
    }

    /// A controller reading from the given listers, with no event handlers:
    /// nothing is queued unless [`enqueue`](Self::enqueue) is called. For
    /// tests with hand-filled stores.
    pub fn from_listers(
        config: Config,
        services: Lister<Service>,
        pods: Lister<PodProjection>,
        endpoints: Lister<Endpoints>,
        writers: Writers,
    ) -> Self {
        metrics::describe();
        let queue = RateLimitingQueue::new(
            QueueConfig::default().name(metrics::QUEUE_NAME),
            default_controller_rate_limiter(),
        );
        let context = sync::SyncContext {
            services,
            pods,
            endpoints,
            writer: writers.endpoints,
            events: writers.events,
            trigger_times: TriggerTimeTracker::new(),
            stale: Arc::default(),
        };
        Self {
            config,
            queue,
            context: Arc::new(context),
            registrations: Arc::default(),
            started: Arc::default(),
        }
    }

    /// The controller's work queue (named `endpoint`), for introspection:
    /// a queue that is idle and informers that are caught up mean the
    /// controller has nothing left to do.
    pub fn queue(&self) -> &RateLimitingQueue<ObjectKey> {
        &self.queue
    }

    /// Whether [`run`](Self::run) is past its start-up: caches synced and
    /// the start-up sweep queued. From then on, an idle queue means the
    /// controller has nothing to do.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    /// Queues a Service key for syncing.
    pub fn enqueue(&self, key: ObjectKey) {
        self.queue.add(key);
    }

    /// Syncs one Service now, outside the queue (tests, tools).
    pub async fn sync(&self, key: &ObjectKey) -> Result<(), SyncError> {
        self.context.sync(key).await
    }

    /// Runs the controller until `shutdown` is cancelled.
    ///
    /// Waits until every informer has delivered its initial list, queues
    /// every cached Endpoints object once (so the Endpoints of Services
    /// deleted while no controller ran are deleted; leader-election lock
    /// objects are skipped), then runs the workers. On shutdown the queue
    /// stops taking keys and the call returns when in-flight syncs are done.
    pub async fn run(&self, shutdown: CancellationToken) {
        tokio::select! {
            () = self.wait_for_sync() => {}
            () = shutdown.cancelled() => return,
        }
        self.queue_leftover_endpoints();
        self.started.store(true, Ordering::SeqCst);
        tracing::info!(workers = self.config.workers, "starting endpoints controller");
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
        tracing::info!("endpoints controller stopped");
    }

    /// Waits until every handler has received its informer's initial list.
    pub async fn wait_for_sync(&self) {
        for registration in self.registrations.iter() {
            registration.wait_for_sync().await;
        }
    }

    /// Queues the key of every cached Endpoints object, except old
    /// leader-election locks (upstream's `checkLeftoverEndpoints`).
    fn queue_leftover_endpoints(&self) {
        for endpoints in self.context.endpoints.list_all() {
            let is_lock = endpoints
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(ANNOTATION_LEADER));
            if !is_lock {
                self.queue.add(ObjectKey::of(endpoints.as_ref()));
            }
        }
    }
}
