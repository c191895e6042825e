//! [`Shadow`]: the informers and the checking controller of shadow mode,
//! on the shared controller runtime; each check compares one Service's
//! desired objects with the existing ones and records the differences in
//! [`ShadowState`].

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ecm_controller::{BaseConfig, Configure, ControllerCore, ServicePods, SyncHandler, watch_services_and_pods};
use ecm_endpointslice::TopologyCache;
use ecm_informer::{InformerFactory, ObjectKey, handler_fn};
use ecm_types::endpoint_slice::{managed_by, service_name};
use ecm_types::wellknown::{MANAGED_BY_ENDPOINTSLICE_CONTROLLER, MANAGED_BY_MIRRORING_CONTROLLER};
use ecm_workqueue::{RateLimitingQueue, default_controller_rate_limiter};
use k8s_openapi::api::core::v1::{Endpoints, Node};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::reason;
use super::state::ShadowState;
use crate::client::ClientSource;
use crate::controller_set::{SHARED_INFORMERS, SharedInformers, WatchedResource};
use crate::controllers::ControllerName;
use crate::explain::{Request, explain};
use crate::parity::{Caches, ENDPOINTSLICE_SLICES, Limits, MIRRORED_SLICES, differences};

/// The queue's name (its `workqueue_*` metrics).
pub const QUEUE_NAME: &str = "shadow";

/// The default grace period.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(5);

/// What shadow mode compares and how patiently.
#[derive(Clone, Debug)]
pub struct ShadowConfig {
    /// The controllers whose output is compared.
    pub controllers: BTreeSet<ControllerName>,
    /// Slice and subset sizes, as the controllers' flags.
    pub limits: Limits,
    /// How long a difference must last to count.
    pub grace_period: Duration,
    /// Concurrent checks.
    pub workers: usize,
}

struct Checker {
    caches: Caches,
    topology: Arc<TopologyCache>,
    config: ShadowConfig,
    queue: RateLimitingQueue<ObjectKey>,
    state: Arc<ShadowState>,
}

#[async_trait]
impl SyncHandler<ObjectKey> for Checker {
    type Error = Infallible;

    /// Compares the desired objects of `key` with the existing ones and
    /// records the differences.
    async fn sync(&self, key: &ObjectKey) -> Result<(), Infallible> {
        let found = differences(
            &self.caches,
            &self.topology,
            self.config.limits,
            &self.config.controllers,
            key,
        );
        let inputs = inputs(&self.caches, key);
        let mut report = None;
        let outcome = self
            .state
            .observe(key, found, inputs, Instant::now(), |controller, difference| {
                let report = report.get_or_insert_with(|| {
                    explain(
                        &self.caches,
                        &Request {
                            service: key.clone(),
                            pod: None,
                            controllers: self.config.controllers.clone(),
                            limits: self.config.limits,
                        },
                    )
                });
                reason::reason(report, controller, difference)
            });
        for d in &outcome.reported {
            tracing::warn!(
                controller = %d.controller,
                service = %d.service,
                field = %d.field,
                subject = %d.subject,
                desired = %d.desired,
                actual = %d.actual,
                reason = %d.reason,
                "shadow divergence: {}: {}: ecm wants {}, found {} ({})",
                d.subject,
                d.field,
                d.desired,
                d.actual,
                d.reason
            );
        }
        for d in &outcome.cleared {
            tracing::info!(controller = %d.controller, service = %d.service, field = %d.field, subject = %d.subject, "shadow divergence cleared");
        }
        if let Some(after) = outcome.recheck_after {
            self.queue.add_after(key.clone(), after);
        }
        Ok(())
    }
}

/// A fingerprint of what a check of `key` reads: the resourceVersions of
/// the Service, the pods it selects, its managed slices and its Endpoints.
/// Two checks with the same fingerprint saw no event concerning the
/// Service in between.
fn inputs(caches: &Caches, key: &ObjectKey) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let version = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        (meta.name.clone(), meta.resource_version.clone())
    };
    if let ServicePods::Selecting { service, pods } = ServicePods::lookup(&caches.services, &caches.pods, key) {
        version(&service.metadata).hash(&mut hasher);
        for pod in pods {
            version(&pod.metadata).hash(&mut hasher);
        }
    } else if let Some(service) = caches.services.get(key.namespace(), key.name()) {
        version(&service.metadata).hash(&mut hasher);
    }
    for manager in [ENDPOINTSLICE_SLICES, MIRRORED_SLICES] {
        for slice in manager.list(&caches.slices, key) {
            version(&slice.metadata).hash(&mut hasher);
        }
    }
    if let Some(endpoints) = caches.endpoints.get(key.namespace(), key.name()) {
        version(&endpoints.metadata).hash(&mut hasher);
    }
    hasher.finish()
}

/// Shadow mode: informers, the checking controller and its state.
pub struct Shadow {
    factory: InformerFactory,
    core: ControllerCore<ObjectKey>,
    checker: Arc<Checker>,
    watched: Vec<WatchedResource>,
}

impl Shadow {
    /// Builds shadow mode over informers reading through the client of
    /// component [`SHARED_INFORMERS`]; they stop when `shutdown` is
    /// cancelled and resync every `resync`.
    pub fn new(
        clients: &dyn ClientSource,
        config: ShadowConfig,
        shutdown: &CancellationToken,
        resync: Option<Duration>,
    ) -> Self {
        let factory = InformerFactory::new(clients.client(SHARED_INFORMERS))
            .with_shutdown(shutdown)
            .with_resync_period(resync);
        let mut shared = SharedInformers::new(&factory);
        let (services, pods, slices, endpoints, nodes) = (
            shared.services(),
            shared.pods(),
            shared.slices(),
            shared.endpoints(),
            shared.nodes(),
        );
        let base = BaseConfig::default().workers(config.workers.max(1));
        let core = ControllerCore::named(QUEUE_NAME, default_controller_rate_limiter(), base);
        let topology = Arc::new(TopologyCache::new());
        // A check costs its Service's slices, not its namespace's.
        ENDPOINTSLICE_SLICES.add_index(slices.lister().store());
        MIRRORED_SLICES.add_index(slices.lister().store());
        let checker = Arc::new(Checker {
            caches: Caches {
                services: services.lister(),
                pods: pods.lister(),
                nodes: nodes.lister(),
                slices: slices.lister(),
                endpoints: endpoints.lister(),
            },
            topology: Arc::clone(&topology),
            state: Arc::new(ShadowState::new(config.grace_period)),
            queue: core.queue().clone(),
            config,
        });
        // A pod change, the other controller's slice write and its
        // Endpoints write arrive within moments of each other: checking
        // once after a fifth of the grace period costs one check, not three,
        // and still reports within the grace period's order of time.
        let batch = checker.config.grace_period / 5;
        watch_services_and_pods(&core, &services, &pods, batch, None);
        let queue = core.queue().clone();
        core.register(
            endpoints.add_event_handler(handler_fn(move |change: ecm_informer::Notification<Endpoints>| {
                queue.add_after(ObjectKey::of(change.object().as_ref()), batch);
            })),
        );
        let queue = core.queue().clone();
        core.register(slices.add_event_handler(handler_fn(
            move |change: ecm_informer::Notification<EndpointSlice>| {
                let slice = change.object();
                let ours = matches!(
                    managed_by(slice),
                    Some(MANAGED_BY_ENDPOINTSLICE_CONTROLLER | MANAGED_BY_MIRRORING_CONTROLLER)
                );
                if let (true, Some(service)) = (ours, service_name(slice)) {
                    let namespace = slice.metadata.namespace.as_deref().unwrap_or_default();
                    queue.add_after(ObjectKey::new(namespace, service), batch);
                }
            },
        )));
        let node_lister = nodes.lister();
        core.register(
            nodes.add_event_handler(handler_fn(move |_: ecm_informer::Notification<Node>| {
                let all = node_lister.list_all();
                topology.set_nodes(all.iter().map(AsRef::as_ref));
            })),
        );
        let watched = shared.into_watched();
        Self {
            factory,
            core,
            checker,
            watched,
        }
    }

    /// The divergences seen so far.
    pub fn state(&self) -> &Arc<ShadowState> {
        &self.checker.state
    }

    /// The informers' resources and progress.
    pub fn watched(&self) -> &[WatchedResource] {
        &self.watched
    }

    /// Whether every informer has delivered its first list.
    pub fn has_synced(&self) -> bool {
        self.watched.iter().all(|w| w.progress.borrow().has_synced)
    }

    /// Whether the checks have started and none is queued, delayed (a
    /// grace period running) or in progress.
    pub fn is_idle(&self) -> bool {
        self.core.state().is_idle()
    }

    /// Starts the informers and checks until `shutdown` is cancelled.
    pub async fn run(&self, shutdown: CancellationToken) {
        self.factory.start();
        self.core
            .run(&shutdown, || {}, Arc::clone(&self.checker), std::future::ready(()))
            .await;
        self.factory.shutdown().await;
    }
}

/// The `/shadow` route: the current [`Report`](super::Report) as JSON.
pub fn routes(state: Arc<ShadowState>) -> axum::Router {
    axum::Router::new().route(
        "/shadow",
        axum::routing::get(move || {
            let state = Arc::clone(&state);
            async move {
                let body = serde_json::to_string(&state.report()).unwrap_or_default();
                ([(http::header::CONTENT_TYPE, "application/json")], body)
            }
        }),
    )
}
