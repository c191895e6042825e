//! [`Controller`]: the informer handlers and the `endpoint` queue around
//! `sync`, on the shared [`ControllerCore`].

use std::sync::Arc;

use async_trait::async_trait;
use ecm_controller::{
    BaseConfig, ChangeTracker, ControllerCore, CoreState, ObjectVersions, Runnable, StaleCacheGuard, SyncHandler,
    TriggerTimeTracker, Writers, watch_services_and_pods,
};
use ecm_informer::{Informer, ObjectKey};
use ecm_types::PodProjection;
use ecm_types::wellknown::ANNOTATION_LEADER;
use ecm_workqueue::default_controller_rate_limiter;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use tokio_util::sync::CancellationToken;

use crate::error::SyncError;
use crate::handlers::EndpointsHandler;
use crate::sync::SyncContext;

/// How the controller runs: the base settings alone, with
/// kube-controller-manager's defaults — `--concurrent-endpoint-syncs` (5)
/// workers, pod changes batched for `--endpoint-updates-batch-period` (0),
/// 15 retries. Set through [`Configure`](ecm_controller::Configure).
pub type Config = BaseConfig;

/// The informers the controller watches through. Pods are cached as the
/// compact [`PodProjection`].
pub struct Informers {
    /// Services.
    pub services: Informer<Service>,
    /// Pods, projected.
    pub pods: Informer<PodProjection>,
    /// Endpoints.
    pub endpoints: Informer<Endpoints>,
}

/// The Endpoints controller. Cheap to clone; clones share one queue.
#[derive(Clone)]
pub struct Controller {
    core: ControllerCore<ObjectKey>,
    context: Arc<SyncContext>,
}

impl Controller {
    /// A controller reading through `informers` and writing Endpoints
    /// objects and events (source component
    /// [`EVENT_SOURCE_COMPONENT`](crate::EVENT_SOURCE_COMPONENT)) through
    /// `writers`. Registers its event handlers; start the informers and
    /// call [`run`](Runnable::run) to make it work. In tests, informers
    /// [detached](ecm_informer::Informer::detached) from any API server
    /// work the same.
    pub fn new(config: Config, informers: &Informers, writers: Writers<Endpoints>) -> Self {
        crate::metrics::describe();
        let (batch_period, incremental) = (config.batch_period, config.incremental);
        let changes = incremental.enabled().then(|| Arc::new(ChangeTracker::new()));
        let core = ControllerCore::named(crate::metrics::QUEUE_NAME, default_controller_rate_limiter(), config);
        let context = Arc::new(SyncContext {
            services: informers.services.lister(),
            pods: informers.pods.lister(),
            endpoints: informers.endpoints.lister(),
            writers,
            trigger_times: TriggerTimeTracker::new(),
            stale: Arc::new(StaleCacheGuard::new(Arc::new(ObjectVersions::default()))),
            changes: changes.clone(),
            incremental,
        });
        watch_services_and_pods(
            &core,
            &informers.services,
            &informers.pods,
            batch_period,
            changes.as_ref(),
        );
        core.register(informers.endpoints.add_event_handler(EndpointsHandler {
            queue: core.queue().clone(),
            stale: Arc::clone(&context.stale),
        }));
        Self { core, context }
    }

    /// The shared core: its queue and state, for tests and tools.
    pub fn core(&self) -> &ControllerCore<ObjectKey> {
        &self.core
    }

    /// Syncs one Service now, outside the queue (tests, tools).
    pub async fn sync(&self, key: &ObjectKey) -> Result<(), SyncError> {
        self.context.sync_recorded(key).await
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
                self.core.queue().add(ObjectKey::of(endpoints.as_ref()));
            }
        }
    }
}

#[async_trait]
impl Runnable for Controller {
    fn state(&self) -> &CoreState {
        self.core.state()
    }

    /// Runs until `shutdown` is cancelled: waits for the caches, queues
    /// every cached Endpoints object once (the leftover sweep), then runs
    /// the workers.
    async fn run(&self, shutdown: CancellationToken) {
        let leftovers = || self.queue_leftover_endpoints();
        let context = Arc::clone(&self.context);
        self.core
            .run(&shutdown, leftovers, context, std::future::ready(()))
            .await;
    }
}
