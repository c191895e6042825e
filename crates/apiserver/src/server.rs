//! [`ApiServer`]: construction, clients, serving on a socket, kubeconfig,
//! direct object access and the write log.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::faults::{FaultConfig, FaultInjector};
use crate::http::ApiService;
use crate::kubelet::{CidrError, Kubelet};
use crate::object::{meta_str, metadata_mut, store_key};
use crate::registry::Registry;
use crate::resources::ResourceTable;
use crate::state::Shared;
use crate::store::Store;
use crate::writelog::{WriteLog, WriteRecord};

/// Errors of the [`ApiServer`] Rust API.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The object has no usable `apiVersion`/`kind`, or the kind is not served.
    #[error("no served resource for apiVersion {api_version:?} kind {kind:?}")]
    UnknownKind {
        /// `apiVersion` of the object.
        api_version: String,
        /// `kind` of the object.
        kind: String,
    },
    /// The resource name is not served.
    #[error("no served resource named {0:?}")]
    UnknownResource(String),
    /// The object has no `metadata.name`.
    #[error("object has no metadata.name")]
    MissingName,
    /// The kubelet's pod CIDR is invalid.
    #[error(transparent)]
    Cidr(#[from] CidrError),
    /// Binding or writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The server has not been served on a socket yet.
    #[error("the server is not listening on a socket; call serve() first")]
    NotServing,
}

/// An in-memory Kubernetes API server.
///
/// Cheap to clone: clones share the same objects. Create it inside a Tokio
/// runtime (the garbage collector and kubelet run as tasks).
#[derive(Clone)]
pub struct ApiServer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("resource_version", &self.latest_resource_version())
            .finish_non_exhaustive()
    }
}

/// Handle of a server listening on a socket; dropping it stops listening.
#[derive(Debug)]
pub struct ServeHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ServeHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig document pointing at this server.
    pub fn kubeconfig(&self) -> String {
        kubeconfig_yaml(&self.url())
    }

    /// Writes [`ServeHandle::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> Result<(), ServerError> {
        std::fs::write(path, self.kubeconfig())?;
        Ok(())
    }

    /// Stops accepting connections and closes open ones.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServeHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A kubeconfig document for a server at `url` (no credentials).
pub fn kubeconfig_yaml(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: ecm-apiserver\n  cluster:\n    server: {url}\ncontexts:\n- name: ecm-apiserver\n  context:\n    cluster: ecm-apiserver\n    user: ecm-apiserver\n    namespace: default\ncurrent-context: ecm-apiserver\nusers:\n- name: ecm-apiserver\n  user: {{}}\npreferences: {{}}\n"
    )
}

impl ApiServer {
    /// Builds a server from `config`: resource table, initial namespaces,
    /// garbage collector, kubelet, workload simulator. Must run inside a
    /// Tokio runtime.
    pub fn new(config: Config) -> Result<Self, ServerError> {
        let table = Arc::new(ResourceTable::new(config.resources.clone()));
        let store = Arc::new(Store::new(table.clone(), config.history_size));
        let registry = Registry::new(store.clone(), config.seed, config.kubelet.is_some());
        let kubelet = config.kubelet.clone().map(Kubelet::new).transpose()?;
        let shared = Arc::new(Shared {
            store: store.clone(),
            registry,
            faults: FaultInjector::new(config.faults.clone()),
            write_log: WriteLog::default(),
            in_flight: AtomicUsize::new(0),
            open_watches: AtomicUsize::new(0),
            shutdown: tokio::sync::watch::channel(0).0,
            served_at: Mutex::new(None),
            auth: parking_lot::RwLock::new(config.auth.clone()),
            openapi: crate::openapi::OpenApi::default(),
            config,
        });
        if let Some(ns_res) = table.by_path("", "v1", "namespaces") {
            for ns in &shared.config.namespaces {
                let opts = crate::registry::WriteOptions {
                    dry_run: false,
                    skip_validation: true,
                    ..Default::default()
                };
                let _ = shared
                    .registry
                    .create(ns_res, None, json!({"metadata": {"name": ns}}), &opts);
            }
        }
        if shared.config.garbage_collection {
            tokio::spawn(crate::gc::run(
                Arc::downgrade(&shared),
                store.subscribe_all(crate::gc::wants),
            ));
        }
        if let Some(kubelet) = kubelet {
            tokio::spawn(crate::kubelet::run(
                Arc::downgrade(&shared),
                kubelet,
                store.subscribe_all(crate::kubelet::wants),
            ));
        }
        if let Some(workloads) = shared.config.workloads.clone() {
            tokio::spawn(crate::workloads::run(
                Arc::downgrade(&shared),
                workloads,
                store.subscribe_all(crate::workloads::wants),
            ));
        }
        Ok(Self { shared })
    }

    /// The server as a `tower::Service` (no socket).
    pub fn service(&self) -> ApiService {
        ApiService {
            shared: self.shared.clone(),
        }
    }

    /// A `kube::Client` talking to this server in-process, default namespace `default`.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.service(), "default")
    }

    /// Like [`ApiServer::client`], sending `User-Agent: user_agent` (recorded in the write log).
    pub fn client_with_user_agent(&self, user_agent: &str) -> kube::Client {
        let ua = http::HeaderValue::from_str(user_agent)
            .unwrap_or_else(|_| http::HeaderValue::from_static("ecm-apiserver-client"));
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut req: http::Request<kube::client::Body>| {
                req.headers_mut().insert(http::header::USER_AGENT, ua.clone());
                req
            })
            .service(self.service());
        kube::Client::new(service, "default")
    }

    /// Listens on `addr` (use port 0 for a random port) and serves HTTP/1.1.
    pub async fn serve(&self, addr: SocketAddr) -> Result<ServeHandle, ServerError> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        *self.shared.served_at.lock() = Some(addr);
        let (stop, mut stopped) = oneshot::channel::<()>();
        let service = self.service();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let _ = stream.set_nodelay(true);
                        let svc = hyper_util::service::TowerToHyperService::new(service.clone());
                        conns.spawn(async move {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
                        });
                    }
                    _ = &mut stopped => break,
                }
                while conns.try_join_next().is_some() {}
            }
            conns.abort_all();
            while conns.join_next().await.is_some() {}
        });
        Ok(ServeHandle {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Writes a kubeconfig for the address last passed to [`ApiServer::serve`].
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> Result<(), ServerError> {
        let addr = (*self.shared.served_at.lock()).ok_or(ServerError::NotServing)?;
        std::fs::write(path, kubeconfig_yaml(&format!("http://{addr}")))?;
        Ok(())
    }

    /// Stores an object exactly as given — status included, no defaulting,
    /// no validation, no admission, no write-log entry — replacing any object
    /// of the same name. Only `metadata.resourceVersion` is assigned, and
    /// `metadata.uid` / `creationTimestamp` are filled in when absent.
    /// Watchers see an ADDED (or MODIFIED) event. Returns the stored object.
    pub fn insert_object(&self, mut obj: Value) -> Result<Value, ServerError> {
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("").to_owned();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("").to_owned();
        let table = &self.shared.store.table;
        let res = table
            .by_api_version_kind(&api_version, &kind)
            .ok_or(ServerError::UnknownKind { api_version, kind })?;
        let info = table.get(res);
        let name = meta_str(&obj, "name").to_owned();
        if name.is_empty() {
            return Err(ServerError::MissingName);
        }
        let uid = self.shared.registry.new_uid();
        {
            let meta = metadata_mut(&mut obj);
            if info.namespaced && meta.get("namespace").and_then(Value::as_str).is_none_or(str::is_empty) {
                meta.insert("namespace".into(), json!("default"));
            }
            meta.entry("uid").or_insert_with(|| json!(uid));
            meta.entry("creationTimestamp")
                .or_insert_with(|| json!(crate::object::now_rfc3339()));
        }
        let ns = info.namespaced.then(|| meta_str(&obj, "namespace").to_owned());
        let key = store_key(ns.as_deref(), &name);
        let stored = self.shared.store.put_raw(res, key, obj);
        Ok((*stored.value).clone())
    }

    fn resource(&self, resource: &str) -> Result<usize, ServerError> {
        self.shared
            .store
            .table
            .by_plural(resource)
            .ok_or_else(|| ServerError::UnknownResource(resource.to_owned()))
    }

    /// Reads an object directly. `resource` is a plural (`pods`), or
    /// `plural.group` to disambiguate (`events.events.k8s.io`).
    pub fn get_object(&self, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let res = self.resource(resource).ok()?;
        let info = self.shared.store.table.get(res);
        let key = store_key(namespace.filter(|_| info.namespaced), name);
        self.shared.store.get(res, &key).map(|o| (*o.value).clone())
    }

    /// Every object of a resource, in key order (namespace, then name).
    pub fn list_objects(&self, resource: &str) -> Vec<Value> {
        let Ok(res) = self.resource(resource) else {
            return Vec::new();
        };
        let all = |_: &crate::store::StoredObject| true;
        self.shared
            .store
            .list(res, None, None, None, 0, &all, false)
            .map(|p| p.items.iter().map(|o| (*o.value).clone()).collect())
            .unwrap_or_default()
    }

    /// The latest resourceVersion handed out (the global counter).
    pub fn latest_resource_version(&self) -> u64 {
        self.shared.store.current_rv()
    }

    /// The resourceVersion of the latest event of a resource (0 when none).
    pub fn latest_event_resource_version(&self, resource: &str) -> Result<u64, ServerError> {
        Ok(self.shared.store.last_event_rv(self.resource(resource)?))
    }

    /// The write log: successful mutating HTTP requests, in order.
    pub fn write_log(&self) -> Vec<WriteRecord> {
        self.shared.write_log.snapshot()
    }

    /// Returns and clears the write log.
    pub fn take_write_log(&self) -> Vec<WriteRecord> {
        self.shared.write_log.take()
    }

    /// Clears the write log.
    pub fn clear_write_log(&self) {
        self.shared.write_log.take();
    }

    /// Number of records in the write log.
    pub fn write_count(&self) -> usize {
        self.shared.write_log.len()
    }

    /// Requests being served right now, watches excluded.
    pub fn in_flight_requests(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// Watches being served right now. A watch counts from the moment it is
    /// registered for events (and for [`close_watches`](Self::close_watches))
    /// until its response stream ends.
    pub fn open_watches(&self) -> usize {
        self.shared.open_watches.load(Ordering::SeqCst)
    }

    /// Replaces the fault injection rules (and reseeds).
    pub fn set_faults(&self, faults: FaultConfig) {
        self.shared.faults.set(faults);
    }

    /// Replaces the tokens and allow rules the reviews answer from.
    pub fn set_auth(&self, auth: crate::AuthConfig) {
        *self.shared.auth.write() = auth;
    }

    /// The tokens and allow rules the reviews answer from.
    pub fn auth(&self) -> crate::AuthConfig {
        self.shared.auth.read().clone()
    }

    /// The current fault injection rules.
    pub fn faults(&self) -> FaultConfig {
        self.shared.faults.get()
    }

    /// How many times a fault rule fired since the server started.
    pub fn faults_fired(&self) -> u64 {
        self.shared.faults.fired()
    }

    /// Forgets a resource's event history now: watches resumed from an
    /// older resourceVersion get 410 Gone.
    pub fn compact(&self, resource: &str) -> Result<(), ServerError> {
        self.shared.store.compact(self.resource(resource)?);
        Ok(())
    }

    /// Ends every open watch stream (clients see the stream close, as when
    /// an API server restarts, and resume from their last resourceVersion).
    pub fn close_watches(&self) {
        self.shared.shutdown.send_modify(|n| *n += 1);
    }
}
