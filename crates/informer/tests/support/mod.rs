//! Test support for the informer integration tests.
//!
//! - [`ApiHarness`]: what a test needs from an API server — a client, writes,
//!   and the faults the informer must survive. Scenarios are written against
//!   the trait so that the same scenario can run against [`StubApiServer`]
//!   (here, in process, on paused time) and, later, against `ecm-apiserver`
//!   over real HTTP.
//! - [`StubApiServer`]: a small in-memory API server behind a `tower`
//!   service, speaking the list/watch JSON protocol `kube::runtime::watcher`
//!   expects, with a global resourceVersion counter, per-collection history,
//!   compaction (410 Gone), bookmarks, disconnections and a request log.
//! - [`Recorder`]: an event handler recording what it is told, and checking
//!   at each call that the store already reflects the notification.
//! - [`eventually`]: waiting on a condition with a deadline, woken by a
//!   [`Notify`], never by sleeping.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ecm_informer::{Deleted, EventHandler, ObjectKey, Store};
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use kube::{Resource, ResourceExt};
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, watch};

/// How long (virtual time, on paused clocks) a test waits for a condition.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// Waits until `condition()` holds, re-checking whenever `notify` fires;
/// panics with `what` after [`DEADLINE`].
pub async fn eventually(notify: &Notify, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let notified = notify.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        if condition() {
            return;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            assert!(condition(), "timed out waiting for {what}");
            return;
        }
    }
}

/// Awaits `future` with the [`DEADLINE`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, future).await {
        Ok(value) => value,
        Err(elapsed) => panic!("timed out waiting for {what}: {elapsed}"),
    }
}

/// One request the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The collection path without namespace, e.g. `/api/v1/pods`.
    pub collection: String,
    pub namespace: Option<String>,
    pub watch: bool,
    pub params: BTreeMap<String, String>,
}

impl RecordedRequest {
    pub fn resource_version(&self) -> Option<&str> {
        self.params.get("resourceVersion").map(String::as_str)
    }
}

/// What the informer tests need from an API server.
pub trait ApiHarness {
    /// A client talking to the server.
    fn client(&self) -> kube::Client;
    /// Creates an object; returns it as stored (with its resourceVersion).
    fn create<K: Resource<DynamicType = ()> + Serialize + DeserializeOwned>(&self, obj: &K) -> impl Future<Output = K>;
    /// Replaces an object; returns it as stored.
    fn replace<K: Resource<DynamicType = ()> + Serialize + DeserializeOwned>(&self, obj: &K)
    -> impl Future<Output = K>;
    /// Deletes an object; returns its final state (with the deletion's
    /// resourceVersion).
    fn delete<K: Resource<DynamicType = ()> + Serialize + DeserializeOwned>(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = K>;
    /// The server's latest resourceVersion.
    fn latest_resource_version(&self) -> String;
    /// Makes the resourceVersion advance without touching the watched
    /// collections (as a write to another resource does).
    fn bump_resource_version(&self);
    /// Ends every open watch normally (as a server-side timeout does).
    fn end_watches(&self);
    /// Sends a bookmark at the latest resourceVersion on every watch that
    /// asked for bookmarks.
    fn send_bookmarks(&self);
    /// Ends every open watch and holds new watch requests until
    /// [`ApiHarness::reconnect`]; writes meanwhile reach no watcher.
    fn disconnect(&self);
    /// Releases held watch requests.
    fn reconnect(&self);
    /// Forgets the watch history up to now: a watch from an older
    /// resourceVersion gets `410 Gone`.
    fn compact(&self);
    /// Every request received so far.
    fn requests(&self) -> Vec<RecordedRequest>;
    /// Fires whenever a request arrives.
    fn request_notify(&self) -> Arc<Notify>;
}

/// Waits until the server has received a request satisfying `pred`, and
/// returns the first such request after the first `skip` requests.
pub async fn wait_for_request<H: ApiHarness>(
    server: &H,
    skip: usize,
    what: &str,
    pred: impl Fn(&RecordedRequest) -> bool,
) -> RecordedRequest {
    let notify = server.request_notify();
    let mut found = None;
    eventually(&notify, what, || {
        found = server.requests().into_iter().skip(skip).find(|r| pred(r));
        found.is_some()
    })
    .await;
    found.expect("found by eventually")
}

// ---------------------------------------------------------------------------
// The stub server.

type StubBody = UnsyncBoxBody<Bytes, Infallible>;

#[derive(Default)]
struct Collection {
    /// key → object JSON.
    objects: BTreeMap<String, Value>,
    /// (resourceVersion, event type, object) for every write since the last
    /// compaction.
    history: Vec<(u64, &'static str, Value)>,
    /// Watches from a resourceVersion below this one get 410 Gone.
    compacted: u64,
    watchers: Vec<WatchSink>,
}

struct WatchSink {
    namespace: Option<String>,
    bookmarks: bool,
    tx: mpsc::UnboundedSender<Bytes>,
}

#[derive(Default)]
struct State {
    resource_version: u64,
    collections: HashMap<String, Collection>,
    requests: Vec<RecordedRequest>,
    fail_lists: usize,
    refuse_watches: usize,
}

/// An in-memory API server for one test. Cheap to clone.
#[derive(Clone)]
pub struct StubApiServer {
    state: Arc<Mutex<State>>,
    requests_changed: Arc<Notify>,
    connected: Arc<watch::Sender<bool>>,
}

impl Default for StubApiServer {
    fn default() -> Self {
        Self::new()
    }
}

fn object_key(obj: &Value) -> String {
    let meta = &obj["metadata"];
    let name = meta["name"].as_str().unwrap_or_default();
    match meta["namespace"].as_str() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_owned(),
    }
}

fn event_line(type_: &str, obj: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({ "type": type_, "object": obj })).unwrap();
    line.push(b'\n');
    Bytes::from(line)
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "code": code, "reason": reason, "message": message,
    })
}

fn full_body(value: &Value) -> StubBody {
    Full::new(Bytes::from(serde_json::to_vec(value).unwrap())).boxed_unsync()
}

fn json_response(code: StatusCode, value: &Value) -> Response<StubBody> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(full_body(value))
        .unwrap()
}

/// `(collection, namespace)` of an API path.
fn parse_path(path: &str) -> Option<(String, Option<String>)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let prefix_len = match *segments.first()? {
        "api" => 2,
        "apis" => 3,
        _ => return None,
    };
    let prefix = segments.get(..prefix_len)?.join("/");
    match segments.get(prefix_len..)? {
        [plural] => Some((format!("/{prefix}/{plural}"), None)),
        ["namespaces", ns, plural] => Some((format!("/{prefix}/{plural}"), Some((*ns).to_owned()))),
        _ => None,
    }
}

fn in_namespace(obj: &Value, namespace: Option<&str>) -> bool {
    namespace.is_none_or(|ns| obj["metadata"]["namespace"].as_str() == Some(ns))
}

impl StubApiServer {
    pub fn new() -> Self {
        let (connected, _) = watch::channel(true);
        Self {
            state: Arc::default(),
            requests_changed: Arc::default(),
            connected: Arc::new(connected),
        }
    }

    /// Makes the next `n` list requests fail with 500.
    pub fn fail_next_lists(&self, n: usize) {
        self.state.lock().fail_lists = n;
    }

    /// Makes the next `n` watch requests fail with HTTP 410 (rather than a
    /// 200 response carrying a 410 ERROR event).
    pub fn refuse_next_watches(&self, n: usize) {
        self.state.lock().refuse_watches = n;
    }

    /// The number of open watches on a collection.
    pub fn open_watches(&self, collection: &str) -> usize {
        let mut state = self.state.lock();
        let coll = state.collections.entry(collection.to_owned()).or_default();
        coll.watchers.retain(|w| !w.tx.is_closed());
        coll.watchers.len()
    }

    fn write<K: Resource<DynamicType = ()> + Serialize + DeserializeOwned>(
        &self,
        type_: &'static str,
        obj: Value,
    ) -> K {
        let collection = K::url_path(&(), None).clone();
        let mut state = self.state.lock();
        state.resource_version += 1;
        let rv = state.resource_version;
        let mut obj = obj;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let key = object_key(&obj);
        let coll = state.collections.entry(collection).or_default();
        match type_ {
            "DELETED" => {
                coll.objects
                    .remove(&key)
                    .unwrap_or_else(|| panic!("delete of missing {key}"));
            }
            "ADDED" => {
                if obj["metadata"]["uid"].is_null() {
                    obj["metadata"]["uid"] = json!(format!("uid-{key}-{rv}"));
                }
                assert!(
                    coll.objects.insert(key.clone(), obj.clone()).is_none(),
                    "create of existing {key}"
                );
            }
            _ => {
                let old = coll
                    .objects
                    .get(&key)
                    .unwrap_or_else(|| panic!("replace of missing {key}"));
                obj["metadata"]["uid"] = old["metadata"]["uid"].clone();
                coll.objects.insert(key, obj.clone());
            }
        }
        coll.history.push((rv, type_, obj.clone()));
        let line = event_line(type_, &obj);
        coll.watchers
            .retain(|w| !in_namespace(&obj, w.namespace.as_deref()) || w.tx.send(line.clone()).is_ok());
        serde_json::from_value(obj).unwrap()
    }

    async fn handle(self, request: Request<kube::client::Body>) -> Response<StubBody> {
        let path = request.uri().path().to_owned();
        let params: BTreeMap<String, String> = request
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let Some((collection, namespace)) = parse_path(&path) else {
            return json_response(StatusCode::NOT_FOUND, &status(404, "NotFound", &path));
        };
        let watch = params.get("watch").is_some_and(|w| w == "true");
        let recorded = RecordedRequest {
            collection: collection.clone(),
            namespace: namespace.clone(),
            watch,
            params,
        };
        self.state.lock().requests.push(recorded.clone());
        self.requests_changed.notify_waiters();
        if watch {
            self.watch(recorded).await
        } else {
            self.list(&recorded)
        }
    }

    fn list(&self, request: &RecordedRequest) -> Response<StubBody> {
        let mut state = self.state.lock();
        if state.fail_lists > 0 {
            state.fail_lists -= 1;
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &status(500, "InternalError", "injected"),
            );
        }
        let rv = state.resource_version.to_string();
        let coll = state.collections.entry(request.collection.clone()).or_default();
        let items: Vec<&Value> = coll
            .objects
            .values()
            .filter(|o| in_namespace(o, request.namespace.as_deref()))
            .collect();
        json_response(
            StatusCode::OK,
            &json!({ "kind": "List", "apiVersion": "v1", "metadata": { "resourceVersion": rv }, "items": items }),
        )
    }

    async fn watch(&self, request: RecordedRequest) -> Response<StubBody> {
        {
            let mut state = self.state.lock();
            if state.refuse_watches > 0 {
                state.refuse_watches -= 1;
                return json_response(StatusCode::GONE, &status(410, "Expired", "too old resource version"));
            }
        }
        // A disconnected server holds watch requests.
        let mut connected = self.connected.subscribe();
        let _ = connected.wait_for(|c| *c).await;

        let mut state = self.state.lock();
        let current = state.resource_version;
        let from = match request.resource_version() {
            None | Some("" | "0") => current,
            Some(rv) => rv.parse::<u64>().unwrap(),
        };
        let coll = state.collections.entry(request.collection.clone()).or_default();
        let (tx, rx) = mpsc::unbounded_channel();
        if from < coll.compacted {
            tx.send(event_line("ERROR", &status(410, "Expired", "too old resource version")))
                .unwrap();
            drop(tx);
        } else {
            for (rv, type_, obj) in &coll.history {
                if *rv > from && in_namespace(obj, request.namespace.as_deref()) {
                    tx.send(event_line(type_, obj)).unwrap();
                }
            }
            let bookmarks = request.params.get("allowWatchBookmarks").is_some_and(|b| b == "true");
            coll.watchers.push(WatchSink {
                namespace: request.namespace.clone(),
                bookmarks,
                tx,
            });
        }
        let frames = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|line| (Ok::<_, Infallible>(Frame::data(line)), rx))
        });
        Response::builder()
            .status(StatusCode::OK)
            .body(StreamBody::new(frames).boxed_unsync())
            .unwrap()
    }
}

impl ApiHarness for StubApiServer {
    fn client(&self) -> kube::Client {
        let server = self.clone();
        let service = tower::service_fn(move |request: Request<kube::client::Body>| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(server.handle(request).await) }
        });
        kube::Client::new(service, "default")
    }

    async fn create<K: Resource<DynamicType = ()> + Serialize + DeserializeOwned>(&self, obj: &K) -> K {
        self.write::<K>("ADDED", serde_json::to_value(obj).unwrap())
    }

    async fn replace<K: Resource<DynamicType = ()> + Serialize + DeserializeOwned>(&self, obj: &K) -> K {
        self.write::<K>("MODIFIED", serde_json::to_value(obj).unwrap())
    }

    async fn delete<K: Resource<DynamicType = ()> + Serialize + DeserializeOwned>(
        &self,
        namespace: &str,
        name: &str,
    ) -> K {
        let collection = K::url_path(&(), None).clone();
        let key = if namespace.is_empty() {
            name.to_owned()
        } else {
            format!("{namespace}/{name}")
        };
        let current = self
            .state
            .lock()
            .collections
            .get(&collection)
            .and_then(|c| c.objects.get(&key).cloned());
        self.write::<K>("DELETED", current.unwrap_or_else(|| panic!("delete of missing {key}")))
    }

    fn latest_resource_version(&self) -> String {
        self.state.lock().resource_version.to_string()
    }

    fn bump_resource_version(&self) {
        self.state.lock().resource_version += 1;
    }

    fn end_watches(&self) {
        for coll in self.state.lock().collections.values_mut() {
            coll.watchers.clear();
        }
    }

    fn send_bookmarks(&self) {
        let mut state = self.state.lock();
        let rv = state.resource_version.to_string();
        for coll in state.collections.values_mut() {
            let line = event_line(
                "BOOKMARK",
                &json!({ "kind": "Pod", "apiVersion": "v1", "metadata": { "resourceVersion": rv } }),
            );
            coll.watchers
                .retain(|w| !w.bookmarks || w.tx.send(line.clone()).is_ok());
        }
    }

    fn disconnect(&self) {
        self.connected.send_replace(false);
        self.end_watches();
    }

    fn reconnect(&self) {
        self.connected.send_replace(true);
    }

    fn compact(&self) {
        let mut state = self.state.lock();
        let rv = state.resource_version;
        for coll in state.collections.values_mut() {
            coll.history.clear();
            coll.compacted = rv;
        }
    }

    fn requests(&self) -> Vec<RecordedRequest> {
        self.state.lock().requests.clone()
    }

    fn request_notify(&self) -> Arc<Notify> {
        Arc::clone(&self.requests_changed)
    }
}

// ---------------------------------------------------------------------------
// Recording handler.

/// A notification as recorded: key and resourceVersions only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Add {
        key: String,
        rv: String,
        initial: bool,
    },
    Update {
        key: String,
        old_rv: String,
        new_rv: String,
    },
    Delete {
        key: String,
        rv: String,
        final_state_unknown: bool,
    },
}

/// Records notifications and checks, during each call, that the store was
/// updated first.
pub struct Recorder<S> {
    seen: Mutex<Vec<Seen>>,
    store: Store<S>,
    stale_store: Mutex<Vec<String>>,
    pub notify: Arc<Notify>,
}

fn rv_of<S: Resource>(obj: &S) -> String {
    obj.meta().resource_version.clone().unwrap_or_default()
}

impl<S: Resource + Send + Sync + 'static> Recorder<S> {
    /// A recorder checking notifications against `store`.
    pub fn new(store: &Store<S>) -> Arc<Self> {
        Arc::new(Self {
            seen: Mutex::default(),
            store: store.clone(),
            stale_store: Mutex::default(),
            notify: Arc::default(),
        })
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().clone()
    }

    pub fn len(&self) -> usize {
        self.seen.lock().len()
    }

    /// Removes and returns everything recorded so far.
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock())
    }

    /// Waits until at least `n` notifications were recorded.
    pub async fn wait_for(&self, n: usize) {
        eventually(&self.notify, &format!("{n} notifications"), || self.len() >= n).await;
    }

    /// Notifications delivered while the store did not yet reflect them.
    pub fn stale_store(&self) -> Vec<String> {
        self.stale_store.lock().clone()
    }

    fn record(&self, seen: Seen, store_fresh: bool) {
        if !store_fresh {
            self.stale_store.lock().push(format!("{seen:?}"));
        }
        self.seen.lock().push(seen);
        self.notify.notify_waiters();
    }
}

impl<S: Resource + Send + Sync + 'static> EventHandler<S> for Recorder<S> {
    fn on_add(&self, obj: &Arc<S>, is_initial_list: bool) {
        let key = ObjectKey::of(obj.as_ref());
        let fresh = self.store.get_by_key(&key).is_some();
        self.record(
            Seen::Add {
                key: key.to_string(),
                rv: rv_of(obj.as_ref()),
                initial: is_initial_list,
            },
            fresh,
        );
    }

    fn on_update(&self, old: &Arc<S>, new: &Arc<S>) {
        let key = ObjectKey::of(new.as_ref());
        let fresh = self
            .store
            .get_by_key(&key)
            .is_some_and(|cached| rv_of(cached.as_ref()) == rv_of(new.as_ref()));
        self.record(
            Seen::Update {
                key: key.to_string(),
                old_rv: rv_of(old.as_ref()),
                new_rv: rv_of(new.as_ref()),
            },
            fresh,
        );
    }

    fn on_delete(&self, deleted: Deleted<S>) {
        let key = deleted.key();
        let fresh = self.store.get_by_key(&key).is_none();
        self.record(
            Seen::Delete {
                key: key.to_string(),
                rv: rv_of(deleted.obj.as_ref()),
                final_state_unknown: deleted.final_state_unknown,
            },
            fresh,
        );
    }
}

/// Keeps names handy in assertions.
pub fn keys<S: Resource>(objects: &[Arc<S>]) -> Vec<String> {
    let mut keys: Vec<String> = objects.iter().map(|o| ObjectKey::of(o.as_ref()).to_string()).collect();
    keys.sort();
    keys
}

/// The labels of a cached object, for assertions.
pub fn labels_of<S: Resource>(obj: &S) -> BTreeMap<String, String> {
    obj.labels().clone()
}

/// Debug helper: the JSON of an object.
pub fn debug_json(obj: &impl Debug) -> String {
    format!("{obj:?}")
}
