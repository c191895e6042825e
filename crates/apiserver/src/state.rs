//! [`Shared`]: the state of one server, handed to the HTTP front, the
//! garbage collector and the hollow kubelet.
//!
//! It sits below all of them (and below [`ApiServer`](crate::ApiServer),
//! which builds it), so that none of them imports another to reach it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use parking_lot::{Mutex, RwLock};

use crate::config::Config;
use crate::faults::FaultInjector;
use crate::openapi::OpenApi;
use crate::registry::Registry;
use crate::reviews::AuthConfig;
use crate::store::Store;
use crate::writelog::WriteLog;

/// State shared by the HTTP front, the garbage collector and the kubelet.
///
/// Everything that serves requests or reacts to changes reads and writes the
/// server through this; it depends on the storage layers below it and on
/// nothing that uses it.
pub(crate) struct Shared {
    pub(crate) store: Arc<Store>,
    pub(crate) registry: Registry,
    pub(crate) config: Config,
    pub(crate) write_log: WriteLog,
    pub(crate) faults: FaultInjector,
    pub(crate) in_flight: AtomicUsize,
    /// Watches being served, for [`ApiServer::open_watches`](crate::ApiServer::open_watches).
    pub(crate) open_watches: AtomicUsize,
    pub(crate) shutdown: tokio::sync::watch::Sender<u64>,
    pub(crate) served_at: Mutex<Option<SocketAddr>>,
    /// What the reviews answer from (the admin API may replace it).
    pub(crate) auth: RwLock<AuthConfig>,
    /// The OpenAPI documents, built on first request.
    pub(crate) openapi: OpenApi,
}
