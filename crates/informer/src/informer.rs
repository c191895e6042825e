//! The shared, indexed informer: client-go's `SharedIndexInformer`.
//!
//! An [`Informer<K, S>`] watches one resource type `K` with
//! [`kube::runtime::watcher()`] (default most-recent list semantics, client-go's
//! backoff through `.default_backoff()`), keeps the objects in an indexed
//! [`Store`] of `Arc<S>` and tells every registered [`EventHandler`] what
//! changed. `S` is what is cached: by default `K` itself without
//! `metadata.managedFields` ([`strip_managed_fields`], as
//! kube-controller-manager's `trim` transform), or any compact projection
//! built by a transform `Fn(K) -> S` ([`Informer::with_transform`]).
//! Objects are decoded without their managedFields in the first place
//! ([`WithoutManagedFields`]; [`InformerConfig::managed_fields`] to keep
//! them for a transform that reads them).
//!
//! # What it adds to kube's watcher
//!
//! - **Relist diff.** kube's watcher announces a (re)list with `Init`,
//!   `InitApply`… and `InitDone`, and leaves it to the consumer to notice
//!   what disappeared. The informer buffers the list and, at `InitDone`,
//!   applies the difference to the store under one write lock, then
//!   delivers it: `on_add` for new keys, `on_update(old, new)` for changed
//!   resourceVersions, nothing for unchanged ones, and `on_delete` with
//!   [`Deleted::final_state_unknown`] set and the last cached object for
//!   keys that are gone (deleted while the watch was down).
//! - **Old objects on update**, from the store, and deletes that always
//!   carry an object.
//! - **Indexes and listers** over the cache ([`Store`], [`Lister`]).
//! - **Handlers** with client-go's ordering guarantees, including synthetic
//!   adds for handlers registered late (see [`crate::handler`]).
//! - **Sync state and resourceVersion**: [`Informer::has_synced`],
//!   [`Informer::wait_for_sync`], [`Informer::last_resource_version`] (list
//!   and bookmark resourceVersions included, recovered from the HTTP
//!   traffic by a small tap between kube's client and its watcher) and
//!   [`Informer::progress`] to await either.
//! - Recovery when a watch *request* is refused with HTTP 410 (the watcher
//!   would retry the same resourceVersion forever): the informer starts a
//!   fresh watcher after a backoff, which relists.
//!
//! # Delivery is inline
//!
//! Handlers run on the informer's own task, right after the store changed,
//! before the next watch event is read. Hence: once
//! [`Informer::last_resource_version`] reports a resourceVersion, every
//! handler call for every event up to it has returned. A simulator can wait
//! for quiescence by comparing it with the API server's latest
//! resourceVersion, with no separate pending-notifications count. The price
//! is that a slow handler slows the informer: handlers only enqueue keys.

use std::collections::HashSet;
use std::fmt;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, DefaultBackoff};
use kube::{Resource, ResourceExt};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::handler::{Deleted, EventHandler, Notification};
use crate::key::ObjectKey;
use crate::lister::Lister;
use crate::metrics::InformerMetrics;
use crate::store::{Store, StoreError};
use crate::tap::{BOOKMARK_MARKER_REASON, Tap};
use crate::without_managed_fields::WithoutManagedFields;

/// The longest the informer waits before replacing a watcher that cannot
/// recover by itself (the backoff's own cap is the same).
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);

/// Why an informer could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InformerError {
    /// [`Informer::run`] was called on an informer that was already started
    /// (each informer runs one watch, once).
    #[error("informer {0} was already started")]
    AlreadyStarted(String),
    /// [`Informer::run`] was called on a [detached](Informer::detached)
    /// informer, which has nothing to watch.
    #[error("informer {0} is detached: it has no API to watch")]
    Detached(String),
}

/// How an informer lists and watches.
///
/// ```
/// use ecm_informer::InformerConfig;
/// use kube::runtime::watcher;
/// let config = InformerConfig::default()
///     .watcher(watcher::Config::default().labels("app=web"))
///     .name("web-pods");
/// # let _ = config;
/// ```
#[derive(Clone, Debug, Default)]
pub struct InformerConfig {
    /// The watcher's configuration: label and field selectors, page size,
    /// timeouts. The default keeps kube's defaults: most-recent (quorum)
    /// lists, pages of 500, bookmarks on.
    pub watcher: watcher::Config,
    /// The value of the `resource` label on the informer's metrics and
    /// tracing spans. Defaults to the plural resource name, qualified by its
    /// group when it has one (`pods`, `endpointslices.discovery.k8s.io`).
    pub name: Option<String>,
    /// How often every cached object is handed to the handlers again as an
    /// update whose old and new objects are the same (client-go's resync
    /// period; kube-controller-manager's `--min-resync-period`). `None`, the
    /// default: never.
    pub resync_period: Option<Duration>,
    /// Whether objects are decoded with their `metadata.managedFields`, for
    /// a transform that reads them. `false`, the default: they are skipped
    /// unread ([`WithoutManagedFields`]), which saves the decoding of a
    /// tree the default transform throws away.
    pub managed_fields: bool,
}

impl InformerConfig {
    /// Decodes `metadata.managedFields` (`true`) or skips them unread
    /// (`false`, the default). Only a transform sees them: the default one,
    /// [`strip_managed_fields`], drops them either way.
    #[must_use]
    pub fn managed_fields(mut self, decode: bool) -> Self {
        self.managed_fields = decode;
        self
    }

    /// Sets the resync period (`None` or zero: no resync).
    #[must_use]
    pub fn resync_period(mut self, period: Option<Duration>) -> Self {
        self.resync_period = period.filter(|p| !p.is_zero());
        self
    }

    /// Sets the watcher configuration.
    #[must_use]
    pub fn watcher(mut self, watcher: watcher::Config) -> Self {
        self.watcher = watcher;
        self
    }

    /// Sets the name used in metrics and traces.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// Where an informer is: synced or not, and the newest resourceVersion it
/// applied. Observe it with [`Informer::progress`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// The first list has been applied to the store and delivered to every
    /// handler registered at that time.
    pub has_synced: bool,
    /// The newest resourceVersion applied: that of the last list, watch
    /// event or bookmark. `None` until the first list is applied. Every
    /// handler call for the changes up to it has returned.
    pub resource_version: Option<String>,
}

/// The default transform: the object as received, without
/// `metadata.managedFields` (kube-controller-manager's `trim`). Idempotent.
pub fn strip_managed_fields<K: Resource>(mut obj: K) -> K {
    obj.meta_mut().managed_fields = None;
    obj
}

/// The default metrics name of a resource: `plural` or `plural.group`.
fn default_name<K: Resource<DynamicType = ()>>() -> String {
    let plural = K::plural(&());
    let group = K::group(&());
    if group.is_empty() {
        plural.into_owned()
    } else {
        format!("{plural}.{group}")
    }
}

/// A handle on a shared, indexed informer. Cheap to clone: clones share the
/// watch, the store and the handlers.
///
/// `K` is the watched type; `S` the stored type (see the
/// [module documentation](self)).
///
/// ```no_run
/// use ecm_informer::{handler_fn, Informer, InformerConfig, Notification, Selector};
/// use k8s_openapi::api::core::v1::Service;
/// use kube::{Api, Client};
/// use tokio_util::sync::CancellationToken;
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::try_default().await?;
/// let services: Informer<Service> = Informer::new(Api::all(client), InformerConfig::default());
/// services.add_event_handler(handler_fn(|n: Notification<Service>| {
///     tracing::info!(?n, "service changed");
/// }));
/// let shutdown = CancellationToken::new();
/// tokio::spawn({
///     let services = services.clone();
///     let shutdown = shutdown.clone();
///     async move { services.run(shutdown).await }
/// });
/// services.wait_for_sync().await;
/// let in_default = services.lister().list("default", &Selector::everything());
/// # let _ = in_default;
/// shutdown.cancel();
/// # Ok(())
/// # }
/// ```
pub struct Informer<K, S = K> {
    shared: Arc<Shared<K, S>>,
}

impl<K, S> Clone for Informer<K, S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K, S> fmt::Debug for Informer<K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Informer")
            .field("name", &self.shared.name)
            .field("started", &self.shared.started.load(Ordering::Relaxed))
            .field("progress", &*self.shared.progress.borrow())
            .finish_non_exhaustive()
    }
}

type Transform<K, S> = Box<dyn Fn(K) -> S + Send + Sync>;

/// The next tick of the resync timer; never, without one.
async fn next_resync(resync: &mut Option<tokio::time::Interval>) {
    match resync {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

struct Shared<K, S> {
    name: Arc<str>,
    /// Where objects come from; `None` for a [detached](Informer::detached)
    /// informer, whose store is filled by hand.
    source: Option<Source<K, S>>,
    watcher_config: watcher::Config,
    managed_fields: bool,
    resync_period: Option<Duration>,
    store: Store<S>,
    /// The handlers, behind the delivery lock. Whoever changes the store
    /// and notifies holds this lock from before the change until the last
    /// handler returned, and so does a late registration while it replays
    /// the cache: no notification can be missed or doubled.
    handlers: Mutex<Handlers<S>>,
    progress: watch::Sender<Progress>,
    started: AtomicBool,
}

/// What a running informer lists and watches, and how it turns objects
/// into what it caches.
struct Source<K, S> {
    /// The API as the caller built it: its client and collection path are
    /// used, through the tap, when the informer starts.
    api: Api<K>,
    transform: Transform<K, S>,
}

struct Handlers<S> {
    next_id: u64,
    registered: Vec<(u64, Arc<dyn EventHandler<S>>)>,
}

/// One step of the watch stream as the informer sees it: a watcher event,
/// or a bookmark recovered by the tap.
enum Step<K> {
    Event(watcher::Event<K>),
    Bookmark(String),
}

/// The watcher's items, sorted into events, bookmarks and errors.
type Steps<K> = BoxStream<'static, Result<Step<K>, watcher::Error>>;

/// A watcher over `client`'s collection of `K`, decoding objects without
/// their managedFields unless `managed_fields`.
fn watch_steps<K>(client: kube::Client, config: watcher::Config, managed_fields: bool) -> Steps<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
{
    if managed_fields {
        let api: Api<K> = Api::all_with(client, &());
        watcher::watcher(api, config).map(classify).boxed()
    } else {
        let api: Api<WithoutManagedFields<K>> = Api::all_with(client, &());
        watcher::watcher(api, config)
            .map(|item| classify(item.map(unwrap_event)))
            .boxed()
    }
}

/// A watcher event over the objects decoded by [`WithoutManagedFields`].
fn unwrap_event<K>(event: watcher::Event<WithoutManagedFields<K>>) -> watcher::Event<K> {
    match event {
        watcher::Event::Apply(obj) => watcher::Event::Apply(obj.0),
        watcher::Event::Delete(obj) => watcher::Event::Delete(obj.0),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(obj) => watcher::Event::InitApply(obj.0),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

fn classify<K>(item: Result<watcher::Event<K>, watcher::Error>) -> Result<Step<K>, watcher::Error> {
    match item {
        Ok(event) => Ok(Step::Event(event)),
        Err(watcher::Error::WatchError(status)) if status.reason == BOOKMARK_MARKER_REASON => {
            Ok(Step::Bookmark(status.message))
        }
        Err(error) => Err(error),
    }
}

/// A watch request refused with 410: kube's watcher would retry the same
/// resourceVersion forever instead of relisting.
fn is_expired_watch_start(error: &watcher::Error) -> bool {
    matches!(error, watcher::Error::WatchStartFailed(kube::Error::Api(status)) if status.code == 410)
}

fn same_resource_version<S: Resource>(a: &S, b: &S) -> bool {
    match (&a.meta().resource_version, &b.meta().resource_version) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
{
    /// An informer caching `K` itself, without `managedFields`.
    ///
    /// `api` decides the scope: `Api::all` for every namespace (or a
    /// cluster-scoped kind), `Api::namespaced` for one namespace. Nothing
    /// happens until [`Informer::run`].
    pub fn new(api: Api<K>, config: InformerConfig) -> Self {
        Self::with_transform(api, config, strip_managed_fields)
    }
}

impl<K, S> Informer<K, S>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
    S: Resource + Send + Sync + 'static,
{
    /// An informer caching `transform(obj)` for every object `obj` it
    /// receives. The transform runs before the object is stored and before
    /// any handler sees it, on the informer's task, for every list item and
    /// watch event: keep it cheap. `S` must keep the name, namespace and
    /// resourceVersion (keys and change detection use them) and the labels
    /// (selectors use them).
    ///
    /// ```no_run
    /// # fn example(client: kube::Client) {
    /// use ecm_informer::{Informer, InformerConfig};
    /// use ecm_types::PodProjection;
    /// use k8s_openapi::api::core::v1::Pod;
    /// use kube::Api;
    ///
    /// let pods: Informer<Pod, PodProjection> =
    ///     Informer::with_transform(Api::all(client), InformerConfig::default(), PodProjection::from);
    /// # }
    /// ```
    pub fn with_transform<F>(api: Api<K>, config: InformerConfig, transform: F) -> Self
    where
        F: Fn(K) -> S + Send + Sync + 'static,
    {
        let source = Source {
            api,
            transform: Box::new(transform),
        };
        Self::build(Some(source), config, Store::new(), Progress::default())
    }

    /// An informer that never lists or watches: its cache is `store`,
    /// filled by hand, and it counts as synced from the start. This is what
    /// client-go's controller tests get by filling a shared informer's
    /// indexer directly: the controller under test is built as in
    /// production, its handlers registered, with no API server. Handlers
    /// see nothing of what is inserted into `store` afterwards (see
    /// [`Store::insert`]). [`run`](Self::run) refuses it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ecm_informer::{Informer, Store};
    /// use k8s_openapi::api::core::v1::Service;
    ///
    /// let store = Store::new();
    /// let services: Informer<Service> = Informer::detached(store.clone());
    /// store.insert(Arc::new(Service::default()));
    /// assert!(services.has_synced());
    /// assert_eq!(services.lister().list_all().len(), 1);
    /// ```
    pub fn detached(store: Store<S>) -> Self {
        let synced = Progress {
            has_synced: true,
            ..Progress::default()
        };
        Self::build(None, InformerConfig::default(), store, synced)
    }

    fn build(source: Option<Source<K, S>>, config: InformerConfig, store: Store<S>, progress: Progress) -> Self {
        let name = config.name.unwrap_or_else(default_name::<K>);
        let (progress, _) = watch::channel(progress);
        Self {
            shared: Arc::new(Shared {
                name: name.into(),
                source,
                watcher_config: config.watcher,
                managed_fields: config.managed_fields,
                resync_period: config.resync_period.filter(|p| !p.is_zero()),
                store,
                handlers: Mutex::new(Handlers {
                    next_id: 0,
                    registered: Vec::new(),
                }),
                progress,
                started: AtomicBool::new(false),
            }),
        }
    }

    /// The name used in metrics and traces.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The informer's cache. Read it freely; write to it only if the
    /// informer is never started (see [`Store::insert`]).
    pub fn store(&self) -> &Store<S> {
        &self.shared.store
    }

    /// A lister over the informer's cache.
    pub fn lister(&self) -> Lister<S> {
        Lister::new(self.shared.store.clone())
    }

    /// Registers an index on the cache (see [`Store::add_indexer`]). Best
    /// done before [`Informer::run`]; objects already cached are indexed at
    /// once either way.
    pub fn add_indexer<F>(&self, name: impl Into<String>, index_fn: F) -> Result<(), StoreError>
    where
        F: Fn(&S) -> Vec<String> + Send + Sync + 'static,
    {
        self.shared.store.add_indexer(name, index_fn)
    }

    /// Keeps a [label index](crate::label_index) on the cache (see
    /// [`Store::add_label_index`]), so that [`Lister::list`] answers
    /// equality selectors in proportion to their answer. Idempotent: each
    /// controller sharing the informer may ask.
    pub fn add_label_index(&self) {
        self.shared.store.add_label_index();
    }

    /// Registers a handler. If objects are already cached, the handler first
    /// receives `on_add(obj, true)` for each of them, on the caller's
    /// thread, before this returns and before any further notification.
    /// See [`crate::handler`] for the contract.
    pub fn add_event_handler(&self, handler: impl EventHandler<S>) -> HandlerRegistration {
        let handler: Arc<dyn EventHandler<S>> = Arc::new(handler);
        let mut handlers = self.shared.handlers.lock();
        for obj in self.shared.store.list() {
            handler.on_add(&obj, true);
        }
        let id = handlers.next_id;
        handlers.next_id += 1;
        handlers.registered.push((id, handler));
        HandlerRegistration {
            id,
            progress: self.shared.progress.subscribe(),
        }
    }

    /// Unregisters a handler; it receives nothing after this returns.
    /// Returns whether it was registered.
    pub fn remove_event_handler(&self, registration: &HandlerRegistration) -> bool {
        let mut handlers = self.shared.handlers.lock();
        let before = handlers.registered.len();
        handlers.registered.retain(|(id, _)| *id != registration.id);
        handlers.registered.len() != before
    }

    /// Whether the first list has been applied to the store and delivered
    /// to the handlers.
    pub fn has_synced(&self) -> bool {
        self.shared.progress.borrow().has_synced
    }

    /// Waits until [`Informer::has_synced`]. Never returns if the informer
    /// is not running; bound it with a timeout or a shutdown signal.
    pub async fn wait_for_sync(&self) {
        let mut progress = self.shared.progress.subscribe();
        // The sender lives in `self.shared`, which `self` keeps alive, so
        // the channel cannot close while we wait.
        let _ = progress.wait_for(|p| p.has_synced).await;
    }

    /// The newest resourceVersion applied (list, watch event or bookmark);
    /// see [`Progress::resource_version`].
    pub fn last_resource_version(&self) -> Option<String> {
        self.shared.progress.borrow().resource_version.clone()
    }

    /// A receiver of the informer's [`Progress`], to await a condition on it
    /// without polling:
    ///
    /// ```no_run
    /// # async fn example(pods: ecm_informer::Informer<k8s_openapi::api::core::v1::Pod>) {
    /// let target = "12345";
    /// pods.progress().wait_for(|p| p.resource_version.as_deref() == Some(target)).await.ok();
    /// # }
    /// ```
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.shared.progress.subscribe()
    }

    /// Whether [`Informer::run`] has been called.
    pub fn is_started(&self) -> bool {
        self.shared.started.load(Ordering::SeqCst)
    }

    /// Lists, then watches, until `shutdown` is cancelled. Errors are
    /// retried with client-go's backoff (800 ms doubling to 30 s, reset
    /// after 2 min of health) and never end the loop. Runs once per
    /// informer: a second call returns [`InformerError::AlreadyStarted`].
    /// Must run inside a Tokio runtime.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), InformerError> {
        let Some(source) = &self.shared.source else {
            return Err(InformerError::Detached(self.shared.name.to_string()));
        };
        if self.shared.started.swap(true, Ordering::SeqCst) {
            return Err(InformerError::AlreadyStarted(self.shared.name.to_string()));
        }
        let span = tracing::info_span!("informer", resource = %self.shared.name);
        self.run_loop(source, shutdown).instrument(span).await;
        Ok(())
    }

    async fn run_loop(&self, source: &Source<K, S>, shutdown: CancellationToken) {
        let shared = &self.shared;
        let metrics = InformerMetrics::new(&shared.name);
        metrics.objects.set(shared.store.len() as f64);
        // The watcher gets an `Api::all_with` over the tapped client; the tap
        // redirects it to the caller's collection path if that differs.
        let all_url = K::url_path(&(), None);
        let url = source.api.resource_url();
        let rewrite = (url != all_url).then(|| (all_url, url.to_owned()));
        let tap = Tap::new(Arc::clone(&shared.name), rewrite, metrics.clone());
        let client = tap.wrap(source.api.clone().into_client());

        let mut cancelled = pin!(shutdown.cancelled_owned());
        let mut resync = shared.resync_period.map(|period| {
            let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        });
        let mut restart_backoff = DefaultBackoff::default();
        let mut lists = 0_u64;
        tracing::debug!("informer started");
        loop {
            let mut buffer = None;
            let mut stream = pin!(
                watch_steps::<K>(client.clone(), shared.watcher_config.clone(), shared.managed_fields)
                    .default_backoff()
            );
            loop {
                let item = tokio::select! {
                    biased;
                    () = &mut cancelled => {
                        tracing::debug!("informer stopped");
                        return;
                    }
                    item = stream.next() => item,
                    () = next_resync(&mut resync) => {
                        self.resync(&metrics);
                        continue;
                    }
                };
                match item {
                    Some(Ok(Step::Event(event))) => {
                        self.handle(&source.transform, event, &mut buffer, &mut lists, &tap, &metrics);
                    }
                    Some(Ok(Step::Bookmark(rv))) => self.advance_resource_version(rv),
                    Some(Err(error)) => {
                        metrics.watch_error(&error);
                        if is_expired_watch_start(&error) {
                            tracing::info!(%error, "watch refused as expired; restarting with a relist");
                            break;
                        }
                        match &error {
                            watcher::Error::WatchError(status) if status.code == 410 => {
                                tracing::info!(%error, "watch expired; relisting");
                            }
                            _ => tracing::warn!(%error, "list/watch failed; retrying after backoff"),
                        }
                    }
                    // The watcher never ends by itself; treat it like a
                    // refused watch all the same.
                    None => break,
                }
            }
            let delay = restart_backoff.next().unwrap_or(MAX_RESTART_DELAY);
            tokio::select! {
                biased;
                () = &mut cancelled => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Hands every cached object to every handler as an unchanged update
    /// (nothing before the first list is applied).
    fn resync(&self, metrics: &InformerMetrics) {
        let shared = &self.shared;
        let handlers = shared.handlers.lock();
        if !shared.progress.borrow().has_synced {
            return;
        }
        let notifications: Vec<Notification<S>> = shared
            .store
            .list()
            .into_iter()
            .map(|obj| Notification::Update {
                old: Arc::clone(&obj),
                new: obj,
            })
            .collect();
        metrics.resyncs.increment(1);
        tracing::debug!(objects = notifications.len(), "resync");
        Self::deliver(&handlers.registered, &notifications, metrics);
    }

    fn handle(
        &self,
        transform: &Transform<K, S>,
        event: watcher::Event<K>,
        buffer: &mut Option<Vec<(ObjectKey, Arc<S>)>>,
        lists: &mut u64,
        tap: &Tap,
        metrics: &InformerMetrics,
    ) {
        match event {
            watcher::Event::Init => {
                if *lists > 0 {
                    metrics.relists.increment(1);
                }
                *lists += 1;
                tap.clear_list_resource_version();
                *buffer = Some(Vec::new());
                tracing::debug!(relist = *lists > 1, "list started");
            }
            watcher::Event::InitApply(obj) => {
                let obj = Arc::new(transform(obj));
                let key = ObjectKey::of(obj.as_ref());
                buffer.get_or_insert_with(Vec::new).push((key, obj));
            }
            watcher::Event::InitDone => {
                let items = buffer.take().unwrap_or_default();
                self.apply_list(items, tap.take_list_resource_version(), metrics);
            }
            watcher::Event::Apply(obj) => {
                let rv = obj.resource_version();
                let obj = Arc::new(transform(obj));
                self.apply_upsert(obj, rv, metrics);
            }
            watcher::Event::Delete(obj) => {
                let rv = obj.resource_version();
                let obj = Arc::new(transform(obj));
                self.apply_delete(obj, rv, metrics);
            }
        }
    }

    /// Applies a complete list atomically, then notifies.
    fn apply_list(&self, items: Vec<(ObjectKey, Arc<S>)>, list_rv: Option<String>, metrics: &InformerMetrics) {
        let shared = &self.shared;
        let handlers = shared.handlers.lock();
        let is_initial_list = !shared.progress.borrow().has_synced;
        let listed_count = items.len();
        let mut notifications = Vec::new();
        {
            let mut store = shared.store.write();
            let mut listed: HashSet<ObjectKey> = HashSet::with_capacity(items.len());
            for (key, new) in items {
                listed.insert(key.clone());
                match store.get(&key) {
                    Some(old) if same_resource_version(old.as_ref(), new.as_ref()) => {}
                    Some(_) => {
                        if let Some(old) = store.insert(key, Arc::clone(&new)) {
                            notifications.push(Notification::Update { old, new });
                        }
                    }
                    None => {
                        store.insert(key, Arc::clone(&new));
                        notifications.push(Notification::Add {
                            obj: new,
                            is_initial_list,
                        });
                    }
                }
            }
            let mut gone: Vec<ObjectKey> = store.keys().filter(|k| !listed.contains(*k)).cloned().collect();
            gone.sort();
            for key in gone {
                if let Some(obj) = store.remove(&key) {
                    notifications.push(Notification::Delete(Deleted {
                        obj,
                        final_state_unknown: true,
                    }));
                }
            }
            metrics.objects.set(store.len() as f64);
        }
        Self::deliver(&handlers.registered, &notifications, metrics);
        tracing::debug!(
            listed = listed_count,
            changes = notifications.len(),
            initial = is_initial_list,
            resource_version = list_rv.as_deref().unwrap_or_default(),
            "list applied"
        );
        shared.progress.send_if_modified(|p| {
            let changed = !p.has_synced || (list_rv.is_some() && p.resource_version != list_rv);
            p.has_synced = true;
            if let Some(rv) = list_rv {
                p.resource_version = Some(rv);
            }
            changed
        });
        drop(handlers);
    }

    /// Applies an added or modified object from the watch, then notifies.
    fn apply_upsert(&self, obj: Arc<S>, rv: Option<String>, metrics: &InformerMetrics) {
        let handlers = self.shared.handlers.lock();
        let key = ObjectKey::of(obj.as_ref());
        let notification = {
            let mut store = self.shared.store.write();
            let old = store.insert(key, Arc::clone(&obj));
            metrics.objects.set(store.len() as f64);
            match old {
                Some(old) if same_resource_version(old.as_ref(), obj.as_ref()) => None,
                Some(old) => Some(Notification::Update { old, new: obj }),
                None => Some(Notification::Add {
                    obj,
                    is_initial_list: false,
                }),
            }
        };
        Self::deliver(&handlers.registered, notification.as_slice(), metrics);
        if let Some(rv) = rv {
            self.advance_resource_version(rv);
        }
    }

    /// Applies a deletion from the watch, then notifies. Handlers are told
    /// even if the object was not cached, as client-go does.
    fn apply_delete(&self, obj: Arc<S>, rv: Option<String>, metrics: &InformerMetrics) {
        let handlers = self.shared.handlers.lock();
        {
            let mut store = self.shared.store.write();
            store.remove(&ObjectKey::of(obj.as_ref()));
            metrics.objects.set(store.len() as f64);
        }
        let notification = Notification::Delete(Deleted {
            obj,
            final_state_unknown: false,
        });
        Self::deliver(&handlers.registered, std::slice::from_ref(&notification), metrics);
        if let Some(rv) = rv {
            self.advance_resource_version(rv);
        }
    }

    fn deliver(
        handlers: &[(u64, Arc<dyn EventHandler<S>>)],
        notifications: &[Notification<S>],
        metrics: &InformerMetrics,
    ) {
        for notification in notifications {
            match notification {
                Notification::Add { .. } => metrics.adds.increment(1),
                Notification::Update { .. } => metrics.updates.increment(1),
                Notification::Delete(_) => metrics.deletes.increment(1),
            }
            if tracing::enabled!(tracing::Level::TRACE) {
                tracing::trace!(?notification, "delivering");
            }
            for (_, handler) in handlers {
                notification.deliver_to(handler.as_ref());
            }
        }
    }

    fn advance_resource_version(&self, rv: String) {
        self.shared.progress.send_if_modified(|p| {
            if p.resource_version.as_deref() == Some(rv.as_str()) {
                false
            } else {
                p.resource_version = Some(rv);
                true
            }
        });
    }
}

/// The handle [`Informer::add_event_handler`] returns.
#[derive(Debug, Clone)]
pub struct HandlerRegistration {
    id: u64,
    progress: watch::Receiver<Progress>,
}

impl HandlerRegistration {
    /// Whether this handler has received the whole initial list. Delivery
    /// is inline and a late handler's synthetic adds are delivered before
    /// [`Informer::add_event_handler`] returns, so this is the informer's
    /// own [`Informer::has_synced`].
    pub fn has_synced(&self) -> bool {
        self.progress.borrow().has_synced
    }

    /// Waits until [`HandlerRegistration::has_synced`].
    pub async fn wait_for_sync(&self) {
        let mut progress = self.progress.clone();
        // Ends early only if the informer was dropped, which leaves nothing
        // to wait for.
        let _ = progress.wait_for(|p| p.has_synced).await;
    }
}

/// The type-erased face of an informer, for the factory.
pub(crate) trait ErasedInformer: Send + Sync {
    fn spawn(&self, shutdown: CancellationToken) -> JoinHandle<()>;
    fn has_synced(&self) -> bool;
    fn wait_for_sync(&self) -> BoxFuture<'static, ()>;
}

impl<K, S> ErasedInformer for Informer<K, S>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
    S: Resource + Send + Sync + 'static,
{
    fn spawn(&self, shutdown: CancellationToken) -> JoinHandle<()> {
        let informer = self.clone();
        tokio::spawn(async move {
            if let Err(error) = informer.run(shutdown).await {
                tracing::warn!(%error, "informer not started by the factory");
            }
        })
    }

    fn has_synced(&self) -> bool {
        Informer::has_synced(self)
    }

    fn wait_for_sync(&self) -> BoxFuture<'static, ()> {
        let informer = self.clone();
        Box::pin(async move { informer.wait_for_sync().await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};

    #[test]
    fn default_names_should_qualify_grouped_resources() {
        assert_eq!(default_name::<Pod>(), "pods");
        assert_eq!(default_name::<Node>(), "nodes");
        assert_eq!(default_name::<EndpointSlice>(), "endpointslices.discovery.k8s.io");
    }

    #[test]
    fn strip_managed_fields_should_be_idempotent() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("a".into()),
                managed_fields: Some(vec![ManagedFieldsEntry::default()]),
                ..Default::default()
            },
            ..Default::default()
        };
        let once = strip_managed_fields(pod);
        assert_eq!(once.metadata.managed_fields, None);
        assert_eq!(strip_managed_fields(once.clone()), once);
    }

    #[test]
    fn same_resource_version_should_need_both_versions() {
        let with = |rv: Option<&str>| Pod {
            metadata: ObjectMeta {
                resource_version: rv.map(str::to_owned),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(same_resource_version(&with(Some("1")), &with(Some("1"))));
        assert!(!same_resource_version(&with(Some("1")), &with(Some("2"))));
        assert!(!same_resource_version(&with(None), &with(None)));
    }
}
