//! The informer factory: one shared informer per (watched type, stored type),
//! as client-go's `SharedInformerFactory`.
//!
//! Controllers ask the factory for the informers they need; two controllers
//! asking for the same pair get the same informer, hence one watch and one
//! cache. [`InformerFactory::start`] spawns every informer not yet running
//! (call it again after asking for more); [`InformerFactory::shutdown`]
//! stops them all and waits for their tasks.
//!
//! ```no_run
//! use ecm_informer::InformerFactory;
//! use ecm_types::PodProjection;
//! use k8s_openapi::api::core::v1::{Pod, Service};
//!
//! # async fn example(client: kube::Client) {
//! let factory = InformerFactory::new(client);
//! let services = factory.informer::<Service>();
//! let pods = factory.informer_as::<Pod, PodProjection>();
//! // Another controller asking again shares the same watch and cache.
//! let same_services = factory.informer::<Service>();
//! assert_eq!(services.name(), same_services.name());
//!
//! factory.start();
//! factory.wait_for_cache_sync().await;
//! # let _ = pods;
//! factory.shutdown().await;
//! # }
//! ```

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::runtime::watcher;
use kube::{Client, Resource};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::informer::{ErasedInformer, Informer, InformerConfig};

/// A registry of shared informers built from one [`kube::Client`].
///
/// Informers it creates watch every namespace (`Api::all`), with the
/// factory's [`watcher::Config`]. Build an [`Informer`] directly for a
/// namespaced or otherwise customised one.
pub struct InformerFactory {
    client: Client,
    watcher_config: watcher::Config,
    resync_period: Option<Duration>,
    shutdown: CancellationToken,
    state: Arc<Mutex<FactoryState>>,
}

impl fmt::Debug for InformerFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("InformerFactory")
            .field("informers", &state.informers.len())
            .field("running", &state.tasks.len())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct FactoryState {
    /// Keyed by `(TypeId::of::<K>(), TypeId::of::<S>())`; `typed` holds an
    /// `Informer<K, S>` of exactly those types.
    informers: HashMap<(TypeId, TypeId), Entry>,
    tasks: Vec<JoinHandle<()>>,
}

struct Entry {
    typed: Box<dyn Any + Send + Sync>,
    erased: Box<dyn ErasedInformer>,
    started: bool,
}

impl InformerFactory {
    /// A factory whose informers use `client` and kube's default watcher
    /// configuration.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            watcher_config: watcher::Config::default(),
            resync_period: None,
            shutdown: CancellationToken::new(),
            state: Arc::default(),
        }
    }

    /// Sets the watcher configuration of the informers created from now on.
    #[must_use]
    pub fn with_watcher_config(mut self, config: watcher::Config) -> Self {
        self.watcher_config = config;
        self
    }

    /// Sets the resync period of the informers created from now on
    /// (client-go's `NewSharedInformerFactory(client, resync)`; `None` or
    /// zero: none, the default). See [`InformerConfig::resync_period`].
    #[must_use]
    pub fn with_resync_period(mut self, period: Option<Duration>) -> Self {
        self.resync_period = period;
        self
    }

    /// Stops the factory's informers when `token` is cancelled (as well as
    /// on [`InformerFactory::shutdown`]).
    #[must_use]
    pub fn with_shutdown(mut self, token: &CancellationToken) -> Self {
        self.shutdown = token.child_token();
        self
    }

    /// The shared informer caching `K` itself (without `managedFields`).
    pub fn informer<K>(&self) -> Informer<K>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
    {
        self.get_or_create(|api, config| Informer::new(api, config))
    }

    /// The shared informer caching `S::from(obj)` for each `K` — for
    /// instance `informer_as::<Pod, PodProjection>()`.
    pub fn informer_as<K, S>(&self) -> Informer<K, S>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
        S: Resource + From<K> + Send + Sync + 'static,
    {
        self.get_or_create(|api, config| Informer::with_transform(api, config, S::from))
    }

    /// The shared informer caching `transform(obj)` for each `K`. If an
    /// informer for `(K, S)` already exists it is returned and `transform`
    /// is dropped: one (watched, stored) pair has one transform.
    pub fn informer_with_transform<K, S, F>(&self, transform: F) -> Informer<K, S>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
        S: Resource + Send + Sync + 'static,
        F: Fn(K) -> S + Send + Sync + 'static,
    {
        self.get_or_create(|api, config| Informer::with_transform(api, config, transform))
    }

    fn get_or_create<K, S>(&self, create: impl FnOnce(Api<K>, InformerConfig) -> Informer<K, S>) -> Informer<K, S>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
        S: Resource + Send + Sync + 'static,
    {
        let key = (TypeId::of::<K>(), TypeId::of::<S>());
        let mut state = self.state.lock();
        if let Some(existing) = state
            .informers
            .get(&key)
            .and_then(|e| e.typed.downcast_ref::<Informer<K, S>>())
        {
            return existing.clone();
        }
        let config = InformerConfig::default()
            .watcher(self.watcher_config.clone())
            .resync_period(self.resync_period);
        let informer = create(Api::all(self.client.clone()), config);
        state.informers.insert(
            key,
            Entry {
                typed: Box::new(informer.clone()),
                erased: Box::new(informer.clone()),
                started: false,
            },
        );
        informer
    }

    /// Spawns the watch of every informer created so far and not yet
    /// started. Idempotent; call it again after creating more informers.
    /// Must be called inside a Tokio runtime.
    pub fn start(&self) {
        let mut state = self.state.lock();
        let FactoryState { informers, tasks } = &mut *state;
        for entry in informers.values_mut().filter(|e| !e.started) {
            entry.started = true;
            tasks.push(entry.erased.spawn(self.shutdown.clone()));
        }
    }

    /// Whether every started informer has synced.
    pub fn has_synced(&self) -> bool {
        self.state
            .lock()
            .informers
            .values()
            .filter(|e| e.started)
            .all(|e| e.erased.has_synced())
    }

    /// Waits until every started informer has synced (client-go's
    /// `WaitForCacheSync`). Bound it with a timeout or a shutdown signal.
    pub async fn wait_for_cache_sync(&self) {
        let waits: Vec<_> = {
            let state = self.state.lock();
            state
                .informers
                .values()
                .filter(|e| e.started)
                .map(|e| e.erased.wait_for_sync())
                .collect()
        };
        futures::future::join_all(waits).await;
    }

    /// The token that stops this factory's informers.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops every informer and waits for their tasks to end.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        let tasks = std::mem::take(&mut self.state.lock().tasks);
        for task in tasks {
            if let Err(error) = task.await {
                tracing::warn!(%error, "informer task failed");
            }
        }
    }
}
