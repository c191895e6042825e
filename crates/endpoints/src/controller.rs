//! [`Controller`]: the informer handlers and the `endpoint` queue around
//! [`sync`](crate::sync), on the shared [`ControllerCore`].

use std::sync::Arc;

use async_trait::async_trait;
use ecm_controller::{
    BaseConfig, Configure, ControllerCore, CoreState, EventRecorder, ObjectVersions, ObjectWriter, Runnable,
    StaleCacheGuard, TriggerTimeTracker, own_key_handler, pod_handler,
};
use ecm_informer::{Informer, Lister, ObjectKey};
use ecm_types::PodProjection;
use ecm_types::wellknown::ANNOTATION_LEADER;
use ecm_workqueue::{QueueConfig, RateLimitingQueue, default_controller_rate_limiter};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use tokio_util::sync::CancellationToken;

use crate::error::SyncError;
use crate::handlers::EndpointsHandler;
use crate::sync::SyncContext;

/// How the controller runs, with kube-controller-manager's defaults:
/// `--concurrent-endpoint-syncs` (5) workers, and pod changes batched for
/// `--endpoint-updates-batch-period` (0). Set through [`Configure`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Workers, batch period (pod events), retries.
    pub base: BaseConfig,
}

impl Configure for Config {
    fn base_mut(&mut self) -> &mut BaseConfig {
        &mut self.base
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
    /// Records events (source component
    /// [`EVENT_SOURCE_COMPONENT`](crate::EVENT_SOURCE_COMPONENT)).
    pub events: Arc<dyn EventRecorder>,
}

/// The listers a controller reads, for [`Controller::from_listers`].
pub struct Listers {
    /// Services.
    pub services: Lister<Service>,
    /// Pods, projected.
    pub pods: Lister<PodProjection>,
    /// Endpoints.
    pub endpoints: Lister<Endpoints>,
}

/// The Endpoints controller. Cheap to clone; clones share one queue.
#[derive(Clone)]
pub struct Controller {
    config: Config,
    core: ControllerCore<ObjectKey>,
    context: Arc<SyncContext>,
}

impl Controller {
    /// A controller watching through `informers` and writing through
    /// `writers`. Registers its event handlers; start the informers and call
    /// [`run`](Runnable::run) to make it work.
    pub fn new(config: Config, informers: &Informers, writers: Writers) -> Self {
        let listers = Listers {
            services: informers.services.lister(),
            pods: informers.pods.lister(),
            endpoints: informers.endpoints.lister(),
        };
        let controller = Self::from_listers(config, listers, writers);
        let (core, queue) = (&controller.core, controller.core.queue());
        core.register(informers.services.add_event_handler(own_key_handler(queue.clone())));
        core.register(informers.pods.add_event_handler(pod_handler(
            queue.clone(),
            informers.services.lister(),
            controller.config.base.batch_period,
        )));
        core.register(informers.endpoints.add_event_handler(EndpointsHandler {
            queue: queue.clone(),
            stale: Arc::clone(&controller.context.stale),
        }));
        controller
    }

    /// A controller reading from the given listers, with no event handlers:
    /// nothing is queued unless [`enqueue`](Self::enqueue) is called. For
    /// tests with hand-filled stores.
    pub fn from_listers(config: Config, listers: Listers, writers: Writers) -> Self {
        crate::metrics::describe();
        let queue = RateLimitingQueue::new(
            QueueConfig::default().name(crate::metrics::QUEUE_NAME),
            default_controller_rate_limiter(),
        );
        let context = SyncContext {
            services: listers.services,
            pods: listers.pods,
            endpoints: listers.endpoints,
            writer: writers.endpoints,
            events: writers.events,
            trigger_times: TriggerTimeTracker::new(),
            stale: Arc::new(StaleCacheGuard::new(Arc::new(ObjectVersions::default()))),
        };
        Self {
            config,
            core: ControllerCore::new(queue),
            context: Arc::new(context),
        }
    }

    /// The controller's work queue (named `endpoint`), for introspection.
    pub fn queue(&self) -> &RateLimitingQueue<ObjectKey> {
        self.core.queue()
    }

    /// Queues a Service key for syncing.
    pub fn enqueue(&self, key: ObjectKey) {
        self.core.queue().add(key);
    }

    /// Syncs one Service now, outside the queue (tests, tools).
    pub async fn sync(&self, key: &ObjectKey) -> Result<(), SyncError> {
        self.context.sync(key).await
    }

    /// Queues the key of every cached Endpoints object, except old
    /// leader-election locks (upstream's `checkLeftoverEndpoints`), so that
    /// the Endpoints of Services deleted while no controller ran are
    /// deleted.
    fn queue_leftover_endpoints(&self) {
        for endpoints in self.context.endpoints.list_all() {
            let is_lock = endpoints
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(ANNOTATION_LEADER));
            if !is_lock {
                self.enqueue(ObjectKey::of(endpoints.as_ref()));
            }
        }
    }
}

#[async_trait]
impl Runnable for Controller {
    fn name(&self) -> &'static str {
        crate::EVENT_SOURCE_COMPONENT
    }

    fn state(&self) -> &CoreState {
        self.core.state()
    }

    /// Runs until `shutdown` is cancelled: waits for the caches, queues
    /// every cached Endpoints object once ([`Controller`]'s leftover sweep),
    /// then runs the workers.
    async fn run(&self, shutdown: CancellationToken) {
        let context = Arc::clone(&self.context);
        let sync = move |key: ObjectKey| {
            let context = Arc::clone(&context);
            async move { context.sync(&key).await }
        };
        let leftovers = || {
            tracing::info!(workers = self.config.base.workers, "starting endpoints controller");
            self.queue_leftover_endpoints();
        };
        self.core
            .run(&shutdown, &self.config.base, leftovers, sync, std::future::ready(()))
            .await;
        tracing::info!("endpoints controller stopped");
    }
}
