//! Informer scenarios against `ecm-apiserver`, the in-memory Kubernetes API
//! server, instead of the stub of `tests/informer.rs`.
//!
//! Every scenario runs twice: with the server's in-process `kube::Client`
//! and over real HTTP on a 127.0.0.1 port. Time is real (the server's watch
//! timeouts and bookmark ticks and kube's backoffs are real timers), and
//! every wait is a condition with a deadline, never a sleep.
//!
//! What the scenarios cover:
//!
//! - the initial list, then watch events: adds flagged `initial`, then
//!   add / update(old, new) / delete with the right objects, `has_synced`
//!   and `wait_for_sync`, late handlers, the store and its namespace and
//!   custom indexes;
//! - watches that end (cut by a fault after each event, timed out by the
//!   server, or refused for a while) resume from the last resourceVersion
//!   with no event missed or repeated and no relist;
//! - a watch too old for the server's bounded history (HTTP 200 with an
//!   `ERROR` event carrying a 410 Status) or refused outright with HTTP 410
//!   relists, and the relist delivers exactly what changed meanwhile,
//!   including deletes seen only as absence (last known object,
//!   `final_state_unknown`);
//! - bookmarks advance the informer's resourceVersion without events, and
//!   the next watch resumes from it.
//!
//! The client's requests are recorded by a `tower` layer under the client,
//! so the scenarios can check which list and watch requests were made.

// Test helpers outside `#[test]` functions panic on purpose too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ecm_apiserver::{ApiServer, Config, FaultAction, FaultConfig, FaultRule, ServeHandle};
use ecm_informer::{Deleted, EventHandler, Informer, InformerConfig, NAMESPACE_INDEX, ObjectKey, Selector, Store};
use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{Api, DeleteParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long (real time) a test waits for any one condition.
const DEADLINE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Waiting.

/// Awaits `future` with the [`DEADLINE`].
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, future).await {
        Ok(value) => value,
        Err(elapsed) => panic!("timed out waiting for {what}: {elapsed}"),
    }
}

/// Waits until `condition()` holds, re-checking whenever `notify` fires;
/// panics with `what` after [`DEADLINE`].
async fn eventually(notify: &Notify, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut notified = std::pin::pin!(notify.notified());
        notified.as_mut().enable();
        if condition() {
            return;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            assert!(condition(), "timed out after {DEADLINE:?} waiting for {what}");
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// Requests the client made.

/// One request, as the client sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
    params: BTreeMap<String, String>,
}

impl Request {
    fn is_watch(&self) -> bool {
        self.params.get("watch").is_some_and(|w| w == "true" || w == "1")
    }

    fn resource_version(&self) -> Option<&str> {
        self.params.get("resourceVersion").map(String::as_str)
    }
}

/// Every request the harness client sent, in order.
#[derive(Clone, Default)]
struct RequestLog {
    requests: Arc<Mutex<Vec<Request>>>,
    notify: Arc<Notify>,
}

impl RequestLog {
    fn record<B>(&self, req: &http::Request<B>) {
        let params = req
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (p.to_owned(), String::new()),
            })
            .collect();
        self.requests.lock().push(Request {
            method: req.method().to_string(),
            path: req.uri().path().to_owned(),
            params,
        });
        self.notify.notify_waiters();
    }
}

// ---------------------------------------------------------------------------
// The server under test.

#[derive(Clone, Copy, Debug)]
enum Transport {
    /// `kube::Client` over the server's `tower::Service`, no socket.
    InProcess,
    /// `kube::Client` over HTTP/1.1 to the server on a 127.0.0.1 port.
    Http,
}

/// Objects the scenarios create: namespaced, with an `app` label.
trait Fixture:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// Everything but `apiVersion`, `kind` and `metadata`.
    fn body() -> Value;
}

impl Fixture for ConfigMap {
    fn body() -> Value {
        json!({"data": {"key": "value"}})
    }
}

impl Fixture for Pod {
    fn body() -> Value {
        json!({"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}})
    }
}

impl Fixture for Secret {
    fn body() -> Value {
        json!({"type": "Opaque", "data": {}})
    }
}

fn fixture_json<K: Fixture>(namespace: &str, name: &str, app: &str) -> Value {
    let mut obj = K::body();
    obj["apiVersion"] = json!(K::api_version(&()));
    obj["kind"] = json!(K::kind(&()));
    obj["metadata"] = json!({"namespace": namespace, "name": name, "labels": {"app": app}});
    obj
}

/// An `ecm-apiserver`, a recorded client to it, and the listener when over HTTP.
struct Harness {
    server: ApiServer,
    client: kube::Client,
    log: RequestLog,
    _serving: Option<ServeHandle>,
}

impl Harness {
    async fn start(transport: Transport, config: Config) -> Self {
        let server = ApiServer::new(config).unwrap();
        let log = RequestLog::default();
        let record = tower::util::MapRequestLayer::new({
            let log = log.clone();
            move |req: http::Request<kube::client::Body>| {
                log.record(&req);
                req
            }
        });
        let (client, serving) = match transport {
            Transport::InProcess => {
                let service = tower::ServiceBuilder::new().layer(record).service(server.service());
                (kube::Client::new(service, "default"), None)
            }
            Transport::Http => {
                let serving = server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
                let config = kube::Config::new(serving.url().parse().unwrap());
                let client = kube::client::ClientBuilder::try_from(config)
                    .unwrap()
                    .with_layer(&record)
                    .build();
                (client, Some(serving))
            }
        };
        Self {
            server,
            client,
            log,
            _serving: serving,
        }
    }

    fn api<K: Fixture>(&self, namespace: &str) -> Api<K> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Stores an object directly, not through the API (a pre-existing object).
    fn insert<K: Fixture>(&self, namespace: &str, name: &str, app: &str) -> K {
        let stored = self
            .server
            .insert_object(fixture_json::<K>(namespace, name, app))
            .unwrap();
        serde_json::from_value(stored).unwrap()
    }

    async fn create<K: Fixture>(&self, namespace: &str, name: &str, app: &str) -> K {
        let obj: K = serde_json::from_value(fixture_json::<K>(namespace, name, app)).unwrap();
        self.api::<K>(namespace)
            .create(&PostParams::default(), &obj)
            .await
            .unwrap()
    }

    /// Replaces `obj` (optimistically: its resourceVersion must be current)
    /// with its `app` label set to `app`.
    async fn relabel<K: Fixture>(&self, obj: &K, app: &str) -> K {
        let mut obj = obj.clone();
        obj.labels_mut().insert("app".into(), app.into());
        self.api::<K>(&obj.namespace().unwrap())
            .replace(&obj.name_any(), &PostParams::default(), &obj)
            .await
            .unwrap()
    }

    /// Deletes an object; returns the resourceVersion of its deletion.
    async fn delete<K: Fixture>(&self, namespace: &str, name: &str) -> String {
        self.api::<K>(namespace)
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
        self.latest_event_rv::<K>()
    }

    /// The server's latest resourceVersion, all resources together.
    fn latest_rv(&self) -> String {
        self.server.latest_resource_version().to_string()
    }

    /// The resourceVersion of the latest event of `K`.
    fn latest_event_rv<K: Fixture>(&self) -> String {
        self.server
            .latest_event_resource_version(&K::plural(&()))
            .unwrap()
            .to_string()
    }

    /// The list and watch requests for every `K` in all namespaces (what
    /// an `Api::all` informer sends), in order.
    fn requests<K: Fixture>(&self) -> Vec<Request> {
        let collection = K::url_path(&(), None);
        self.log
            .requests
            .lock()
            .iter()
            .filter(|r| r.method == "GET" && r.path == collection)
            .cloned()
            .collect()
    }

    fn lists<K: Fixture>(&self) -> usize {
        self.requests::<K>().iter().filter(|r| !r.is_watch()).count()
    }

    /// Waits for a request of [`Harness::requests`], after the first
    /// `skip`, satisfying `pred`; returns it.
    async fn wait_for_request<K: Fixture>(&self, skip: usize, what: &str, pred: impl Fn(&Request) -> bool) -> Request {
        let mut found = None;
        eventually(&self.log.notify, what, || {
            found = self.requests::<K>().into_iter().skip(skip).find(|r| pred(r));
            found.is_some()
        })
        .await;
        found.expect("found by eventually")
    }

    /// Makes every watch of `plural` fail with HTTP 500 until the faults are
    /// cleared: the informer keeps retrying, from its last resourceVersion.
    ///
    /// Waits first until the server has the informer's watch open: the
    /// request log sees a watch before the server has taken it, and a fault
    /// set in between would refuse that first watch instead.
    async fn refuse_watches(&self, plural: &str) {
        let deadline = Instant::now() + DEADLINE;
        while self.server.open_watches() == 0 {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for the informer's watch to open"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.set_watch_fault(
            plural,
            FaultAction::Error {
                code: 500,
                retry_after_seconds: None,
                message: None,
            },
            None,
        );
    }

    fn set_watch_fault(&self, plural: &str, action: FaultAction, count: Option<u64>) {
        let mut rule = FaultRule::new(plural, &["watch"], action);
        rule.count = count;
        self.server.set_faults(FaultConfig {
            seed: 0,
            rules: vec![rule],
        });
    }

    fn clear_faults(&self) {
        self.server.set_faults(FaultConfig::default());
    }

    /// Ends every open watch, then waits until the informer's next watch of
    /// `K` (from `rv`) has been sent: from then on, with
    /// [`Harness::refuse_watches`] in force, no watch of `K` is open.
    async fn disconnect<K: Fixture>(&self, rv: &str) -> usize {
        let before = self.requests::<K>().len();
        self.server.close_watches();
        self.wait_for_request::<K>(before, "a watch after the disconnection", |r| {
            r.is_watch() && r.resource_version() == Some(rv)
        })
        .await;
        before
    }
}

// ---------------------------------------------------------------------------
// What handlers were told.

/// One notification, reduced to what the scenarios compare.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Add {
        key: String,
        rv: String,
        app: String,
        initial: bool,
    },
    Update {
        key: String,
        old_rv: String,
        new_rv: String,
        old_app: String,
        new_app: String,
    },
    Delete {
        key: String,
        rv: String,
        app: String,
        final_state_unknown: bool,
    },
}

impl Seen {
    /// The resourceVersion the notification brought the store to.
    fn rv(&self) -> &str {
        match self {
            Self::Add { rv, .. } | Self::Delete { rv, .. } => rv,
            Self::Update { new_rv, .. } => new_rv,
        }
    }
}

fn rv<K: Resource>(obj: &K) -> String {
    obj.meta().resource_version.clone().unwrap_or_default()
}

fn app<K: Resource>(obj: &K) -> String {
    obj.labels().get("app").cloned().unwrap_or_default()
}

fn app_index<K: Resource>(obj: &K) -> Vec<String> {
    obj.labels().get("app").cloned().into_iter().collect()
}

fn added<K: Resource>(obj: &K, initial: bool) -> Seen {
    Seen::Add {
        key: ObjectKey::of(obj).to_string(),
        rv: rv(obj),
        app: app(obj),
        initial,
    }
}

fn updated<K: Resource>(old: &K, new: &K) -> Seen {
    Seen::Update {
        key: ObjectKey::of(new).to_string(),
        old_rv: rv(old),
        new_rv: rv(new),
        old_app: app(old),
        new_app: app(new),
    }
}

/// A delete of `last_known`; `rv` is that of the object handed to the
/// handler (the deletion's for an observed delete, the last known one for
/// an inferred one).
fn deleted<K: Resource>(last_known: &K, rv: &str, final_state_unknown: bool) -> Seen {
    Seen::Delete {
        key: ObjectKey::of(last_known).to_string(),
        rv: rv.into(),
        app: app(last_known),
        final_state_unknown,
    }
}

fn sorted(mut seen: Vec<Seen>) -> Vec<Seen> {
    seen.sort_by_key(|s| format!("{s:?}"));
    seen
}

/// A handler sending what it is told down a channel, and checking at each
/// call that the store already reflects the notification.
struct Recorder<S> {
    store: Store<S>,
    tx: mpsc::UnboundedSender<Seen>,
    stale_store: Mutex<Vec<Seen>>,
}

/// The receiving end of a [`Recorder`].
struct Events {
    rx: mpsc::UnboundedReceiver<Seen>,
}

impl<S: Resource + Send + Sync + 'static> Recorder<S> {
    fn new(store: &Store<S>) -> (Arc<Self>, Events) {
        let (tx, rx) = mpsc::unbounded_channel();
        let recorder = Arc::new(Self {
            store: store.clone(),
            tx,
            stale_store: Mutex::default(),
        });
        (recorder, Events { rx })
    }

    fn stale_store(&self) -> Vec<Seen> {
        self.stale_store.lock().clone()
    }

    fn record(&self, seen: Seen, store_fresh: bool) {
        if !store_fresh {
            self.stale_store.lock().push(seen.clone());
        }
        let _ = self.tx.send(seen);
    }
}

impl<S: Resource + Send + Sync + 'static> EventHandler<S> for Recorder<S> {
    fn on_add(&self, obj: &Arc<S>, is_initial_list: bool) {
        let fresh = self
            .store
            .get_by_key(&ObjectKey::of(obj.as_ref()))
            .is_some_and(|cached| rv(cached.as_ref()) == rv(obj.as_ref()));
        self.record(added(obj.as_ref(), is_initial_list), fresh);
    }

    fn on_update(&self, old: &Arc<S>, new: &Arc<S>) {
        let fresh = self
            .store
            .get_by_key(&ObjectKey::of(new.as_ref()))
            .is_some_and(|cached| rv(cached.as_ref()) == rv(new.as_ref()));
        self.record(updated(old.as_ref(), new.as_ref()), fresh);
    }

    fn on_delete(&self, gone: Deleted<S>) {
        let fresh = self.store.get_by_key(&gone.key()).is_none();
        self.record(
            deleted(gone.obj.as_ref(), &rv(gone.obj.as_ref()), gone.final_state_unknown),
            fresh,
        );
    }
}

impl Events {
    /// The next `n` notifications, waiting for them up to the [`DEADLINE`].
    async fn next(&mut self, n: usize, what: &str) -> Vec<Seen> {
        let deadline = Instant::now() + DEADLINE;
        let mut seen = Vec::with_capacity(n);
        while seen.len() < n {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(one)) => seen.push(one),
                Ok(None) => panic!("the informer dropped its handlers while waiting for {what}: {seen:?}"),
                Err(elapsed) => panic!("timed out waiting for {what} ({elapsed}): got only {seen:?}"),
            }
        }
        seen
    }

    /// Notifications delivered and not yet taken.
    fn pending(&mut self) -> Vec<Seen> {
        let mut seen = Vec::new();
        while let Ok(one) = self.rx.try_recv() {
            seen.push(one);
        }
        seen
    }
}

// ---------------------------------------------------------------------------
// Informer helpers.

/// Runs the informer until the returned token is cancelled.
fn spawn<K: Fixture>(informer: &Informer<K>) -> CancellationToken {
    let shutdown = CancellationToken::new();
    let (informer, token) = (informer.clone(), shutdown.clone());
    tokio::spawn(async move { informer.run(token).await.unwrap() });
    shutdown
}

/// Waits until the informer reports `rv` as its last resourceVersion.
async fn wait_for_rv<K: Fixture>(informer: &Informer<K>, rv: &str) {
    let mut progress = informer.progress();
    within(
        &format!("the informer at resourceVersion {rv}"),
        progress.wait_for(|p| p.resource_version.as_deref() == Some(rv)),
    )
    .await
    .unwrap();
}

fn keys<S: Resource>(objects: &[Arc<S>]) -> Vec<String> {
    let mut keys: Vec<String> = objects.iter().map(|o| ObjectKey::of(o.as_ref()).to_string()).collect();
    keys.sort();
    keys
}

/// The store holds `expected_keys`, each at the server's resourceVersion,
/// and its indexes (namespace and custom) agree with its contents.
fn assert_consistent<K: Fixture>(env: &Harness, informer: &Informer<K>, expected_keys: &[&str]) {
    let store = informer.store();
    let mut listed: Vec<String> = store.list_keys().iter().map(ToString::to_string).collect();
    listed.sort();
    assert_eq!(listed, expected_keys);
    store.check_indexes().unwrap();
    let on_server: BTreeMap<String, String> = env
        .server
        .list_objects(&K::plural(&()))
        .into_iter()
        .map(|o| {
            let o: K = serde_json::from_value(o).unwrap();
            (ObjectKey::of(&o).to_string(), rv(&o))
        })
        .collect();
    let cached: BTreeMap<String, String> = store
        .list()
        .iter()
        .map(|o| (ObjectKey::of(o.as_ref()).to_string(), rv(o.as_ref())))
        .collect();
    assert_eq!(cached, on_server, "the cache is not what the server holds");
    // The namespace index, checked from outside too.
    let mut namespaces: Vec<String> = listed.iter().map(|k| k.split('/').next().unwrap().to_owned()).collect();
    namespaces.dedup();
    for ns in namespaces {
        let in_ns: Vec<String> = listed
            .iter()
            .filter(|k| k.starts_with(&format!("{ns}/")))
            .cloned()
            .collect();
        assert_eq!(keys(&store.by_index(NAMESPACE_INDEX, &ns).unwrap()), in_ns);
    }
}

fn index_keys<K: Fixture>(informer: &Informer<K>, app: &str) -> Vec<String> {
    keys(&informer.store().by_index("app", app).unwrap())
}

fn cut_every_watch_after_one_event(plural: &str) -> FaultConfig {
    FaultConfig {
        seed: 0,
        rules: vec![FaultRule::new(
            plural,
            &["watch"],
            FaultAction::CutWatchAfterEvents { events: 1 },
        )],
    }
}

// ---------------------------------------------------------------------------
// Scenarios.

/// Pre-existing objects arrive as initial adds, then watch events as adds,
/// updates (with the old object) and deletes, in order; `has_synced` flips
/// once the list is delivered; a late handler gets the cache replayed.
async fn initial_list_then_watch<K: Fixture>(transport: Transport) {
    let env = Harness::start(transport, Config::default().namespaces(["default", "other"])).await;
    let a: K = env.insert("default", "a", "web");
    let b: K = env.insert("default", "b", "db");
    let c: K = env.insert("other", "c", "web");
    let list_rv = env.latest_rv();

    let informer = Informer::<K>::new(Api::all(env.client.clone()), InformerConfig::default());
    informer.add_indexer("app", app_index::<K>).unwrap();
    let (recorder, mut events) = Recorder::new(informer.store());
    let registration = informer.add_event_handler(Arc::clone(&recorder));
    assert!(!registration.has_synced() && !informer.has_synced());
    assert_eq!(informer.last_resource_version(), None);
    let shutdown = spawn(&informer);
    within("the initial sync", registration.wait_for_sync()).await;

    // Delivery is inline: once synced, the whole list has been delivered.
    assert!(informer.has_synced());
    within("the informer's own sync", informer.wait_for_sync()).await;
    assert_eq!(
        sorted(events.pending()),
        [added(&a, true), added(&b, true), added(&c, true)]
    );
    assert_eq!(informer.last_resource_version(), Some(list_rv.clone()));
    // One most-recent list, then a watch from the list's resourceVersion.
    let watch = env.wait_for_request::<K>(0, "the first watch", Request::is_watch).await;
    let requests = env.requests::<K>();
    assert!(!requests[0].is_watch());
    assert_eq!(requests[0].resource_version(), None);
    assert_eq!(watch.resource_version(), Some(list_rv.as_str()));
    assert_eq!(
        watch.params.get("allowWatchBookmarks").map(String::as_str),
        Some("true")
    );
    assert_consistent(&env, &informer, &["default/a", "default/b", "other/c"]);

    // A handler added now gets the cache as initial adds, before the call returns.
    let (late, mut late_events) = Recorder::new(informer.store());
    let late_registration = informer.add_event_handler(Arc::clone(&late));
    assert!(late_registration.has_synced());
    assert_eq!(
        sorted(late_events.pending()),
        [added(&a, true), added(&b, true), added(&c, true)]
    );

    let d: K = env.create("default", "d", "web").await;
    let a2 = env.relabel(&a, "db").await;
    let b_deleted_at = env.delete::<K>("default", "b").await;
    let expected = [added(&d, false), updated(&a, &a2), deleted(&b, &b_deleted_at, false)];
    assert_eq!(events.next(3, "three watch events").await, expected);
    assert_eq!(late_events.next(3, "three watch events, late handler").await, expected);
    wait_for_rv(&informer, &env.latest_event_rv::<K>()).await;
    assert_eq!(events.pending(), [], "nothing more was delivered");
    assert_eq!(env.lists::<K>(), 1, "no relist");

    assert_consistent(&env, &informer, &["default/a", "default/d", "other/c"]);
    assert_eq!(index_keys(&informer, "web"), ["default/d", "other/c"]);
    assert_eq!(index_keys(&informer, "db"), ["default/a"]);
    let web: Selector = "app=web".parse().unwrap();
    assert_eq!(keys(&informer.lister().list("default", &web)), ["default/d"]);
    assert_eq!(keys(&informer.lister().list("", &web)), ["default/d", "other/c"]);
    let cached_a = informer.lister().get("default", "a").unwrap();
    assert_eq!(rv(cached_a.as_ref()), rv(&a2));
    assert_eq!(cached_a.uid(), a.uid());
    assert_eq!(recorder.stale_store(), [], "handlers ran before the store changed");
    assert_eq!(late.stale_store(), []);
    shutdown.cancel();
}

/// Every watch is cut by the server after one event while changes keep
/// coming: each watch resumes from the resourceVersion of the event before,
/// nothing is missed or repeated, nothing is relisted.
async fn cut_watches_resume_from_last_resource_version<K: Fixture>(transport: Transport) {
    let env = Harness::start(
        transport,
        Config::default().faults(cut_every_watch_after_one_event(&K::plural(&()))),
    )
    .await;
    let first: K = env.insert("default", "first", "web");
    let informer = Informer::<K>::new(Api::all(env.client.clone()), InformerConfig::default());
    informer.add_indexer("app", app_index::<K>).unwrap();
    let (recorder, mut events) = Recorder::new(informer.store());
    informer.add_event_handler(Arc::clone(&recorder));
    let shutdown = spawn(&informer);
    within("sync", informer.wait_for_sync()).await;
    assert_eq!(events.pending(), [added(&first, true)]);
    let list_rv = informer.last_resource_version().unwrap();

    // Writes as fast as the server takes them, racing the reconnections.
    let mut expected = Vec::new();
    let mut objects: Vec<K> = Vec::new();
    for i in 0..6 {
        let obj: K = env.create("default", &format!("o{i}"), "web").await;
        expected.push(added(&obj, false));
        objects.push(obj);
    }
    for i in [0, 2, 4] {
        let new = env.relabel(&objects[i], "db").await;
        expected.push(updated(&objects[i], &new));
        objects[i] = new;
    }
    for i in [1, 3] {
        let at = env.delete::<K>("default", &format!("o{i}")).await;
        expected.push(deleted(&objects[i], &at, false));
    }
    let seen = events.next(expected.len(), "every change").await;
    assert_eq!(seen, expected);
    let last = expected.last().unwrap().rv().to_owned();
    wait_for_rv(&informer, &last).await;
    env.wait_for_request::<K>(0, "the watch from the last event", |r| {
        r.is_watch() && r.resource_version() == Some(last.as_str())
    })
    .await;
    assert_eq!(events.pending(), []);

    // One list; one watch per event, each from the event before.
    let requests = env.requests::<K>();
    assert_eq!(env.lists::<K>(), 1, "no relist: {requests:?}");
    let watched_from: Vec<&str> = requests.iter().filter_map(Request::resource_version).collect();
    let mut expected_from = vec![list_rv.as_str()];
    expected_from.extend(expected.iter().map(Seen::rv));
    assert_eq!(watched_from, expected_from);

    assert_consistent(
        &env,
        &informer,
        &["default/first", "default/o0", "default/o2", "default/o4", "default/o5"],
    );
    assert_eq!(index_keys(&informer, "db"), ["default/o0", "default/o2", "default/o4"]);
    assert_eq!(index_keys(&informer, "web"), ["default/first", "default/o5"]);
    assert_eq!(recorder.stale_store(), []);
    shutdown.cancel();
}

/// The server ends watches on its own timeout (`Config::watch_timeout`,
/// applied when the client asks for no `timeoutSeconds`) between and during
/// writes: the informer resumes each time from its last resourceVersion.
async fn timed_out_watches_resume_from_last_resource_version<K: Fixture>(transport: Transport) {
    let env = Harness::start(transport, Config::default().watch_timeout(Duration::from_millis(150))).await;
    let informer = Informer::<K>::new(
        Api::all(env.client.clone()),
        // timeoutSeconds=0: the server's own watch timeout applies.
        InformerConfig::default().watcher(watcher::Config::default().timeout(0)),
    );
    informer.add_indexer("app", app_index::<K>).unwrap();
    let (recorder, mut events) = Recorder::new(informer.store());
    informer.add_event_handler(Arc::clone(&recorder));
    let shutdown = spawn(&informer);
    within("sync", informer.wait_for_sync()).await;
    let list_rv = informer.last_resource_version().unwrap();
    env.wait_for_request::<K>(0, "the first watch", Request::is_watch).await;

    let mut expected = Vec::new();
    let mut objects: Vec<K> = Vec::new();
    for i in 0..4 {
        // Wait for the informer to be on a newer watch than before the
        // write, so that writes land across several watches.
        let before = env.requests::<K>().len();
        let obj: K = env
            .create("default", &format!("o{i}"), if i % 2 == 0 { "web" } else { "db" })
            .await;
        expected.push(added(&obj, false));
        objects.push(obj);
        env.wait_for_request::<K>(before, "a watch restarted after a server timeout", Request::is_watch)
            .await;
    }
    let new = env.relabel(&objects[0], "db").await;
    expected.push(updated(&objects[0], &new));
    let before = env.requests::<K>().len();
    let at = env.delete::<K>("default", "o1").await;
    expected.push(deleted(&objects[1], &at, false));
    env.wait_for_request::<K>(before, "a watch restarted after a server timeout", Request::is_watch)
        .await;

    assert_eq!(events.next(expected.len(), "every change").await, expected);
    wait_for_rv(&informer, &at).await;
    assert_eq!(events.pending(), []);
    let requests = env.requests::<K>();
    assert_eq!(env.lists::<K>(), 1, "no relist: {requests:?}");
    let watched_from: Vec<u64> = requests
        .iter()
        .filter(|r| r.is_watch())
        .map(|r| r.resource_version().unwrap().parse().unwrap())
        .collect();
    // The first watch, and at least one restart waited for after each of
    // the five writes above.
    assert!(watched_from.len() >= 6, "{watched_from:?}");
    assert!(watched_from.is_sorted(), "watches went back in time: {watched_from:?}");
    // Each watch starts where the informer was: the list or an event.
    let known: Vec<&str> = std::iter::once(list_rv.as_str())
        .chain(expected.iter().map(Seen::rv))
        .collect();
    for r in &requests[1..] {
        assert!(known.contains(&r.resource_version().unwrap()), "{r:?} not in {known:?}");
    }
    assert_consistent(&env, &informer, &["default/o0", "default/o2", "default/o3"]);
    assert_eq!(index_keys(&informer, "db"), ["default/o0", "default/o3"]);
    assert_eq!(recorder.stale_store(), []);
    shutdown.cancel();
}

/// Watches are refused (HTTP 500) for a while during which objects change;
/// the history still holds the changes, so the informer's retried watch
/// from its last resourceVersion replays them: no relist, nothing doubled.
async fn refused_watch_resumes_from_history<K: Fixture>(transport: Transport) {
    let env = Harness::start(transport, Config::default()).await;
    let a: K = env.insert("default", "a", "web");
    let informer = Informer::<K>::new(Api::all(env.client.clone()), InformerConfig::default());
    informer.add_indexer("app", app_index::<K>).unwrap();
    let (recorder, mut events) = Recorder::new(informer.store());
    informer.add_event_handler(Arc::clone(&recorder));
    let shutdown = spawn(&informer);
    within("sync", informer.wait_for_sync()).await;
    events.pending();
    let b: K = env.create("default", "b", "web").await;
    assert_eq!(events.next(1, "b added").await, [added(&b, false)]);
    wait_for_rv(&informer, &rv(&b)).await;

    env.refuse_watches(&K::plural(&())).await;
    let before = env.disconnect::<K>(&rv(&b)).await;
    let c: K = env.create("default", "c", "db").await;
    let a2 = env.relabel(&a, "db").await;
    let b_deleted_at = env.delete::<K>("default", "b").await;
    assert_eq!(events.pending(), [], "no watch is open");
    env.clear_faults();

    let expected = [added(&c, false), updated(&a, &a2), deleted(&b, &b_deleted_at, false)];
    assert_eq!(events.next(3, "the changes made while refused").await, expected);
    wait_for_rv(&informer, &b_deleted_at).await;
    assert_eq!(events.pending(), []);
    let requests = env.requests::<K>();
    assert_eq!(env.lists::<K>(), 1, "no relist: {requests:?}");
    assert!(
        requests[before..]
            .iter()
            .all(|r| r.is_watch() && r.resource_version() == Some(rv(&b).as_str())),
        "every retry resumes from b's resourceVersion: {:?}",
        &requests[before..]
    );
    assert_consistent(&env, &informer, &["default/a", "default/c"]);
    assert_eq!(index_keys(&informer, "db"), ["default/a", "default/c"]);
    assert_eq!(index_keys(&informer, "web"), Vec::<String>::new());
    assert_eq!(recorder.stale_store(), []);
    shutdown.cancel();
}

/// While watches are refused, many more changes than the server's history
/// holds: the retried watch gets 410 Gone (an `ERROR` event in a 200
/// response, as kube-apiserver's watch cache answers), the informer
/// relists, and the relist delivers exactly the net difference.
async fn expired_watch_relists_and_delivers_exactly_the_difference<K: Fixture>(transport: Transport) {
    const HISTORY: usize = 4;
    let env = Harness::start(transport, Config::default().history_size(HISTORY)).await;
    let a: K = env.insert("default", "a", "web");
    let b: K = env.insert("default", "b", "web");
    let unchanged_c: K = env.insert("default", "c", "web");
    let unchanged_x: K = env.insert("default", "x", "db");
    let y: K = env.insert("default", "y", "web");
    let informer = Informer::<K>::new(Api::all(env.client.clone()), InformerConfig::default());
    informer.add_indexer("app", app_index::<K>).unwrap();
    let (recorder, mut events) = Recorder::new(informer.store());
    informer.add_event_handler(Arc::clone(&recorder));
    let shutdown = spawn(&informer);
    within("sync", informer.wait_for_sync()).await;
    assert_eq!(events.pending().len(), 5);
    let old_rv = informer.last_resource_version().unwrap();
    env.wait_for_request::<K>(0, "the first watch", Request::is_watch).await;

    env.refuse_watches(&K::plural(&())).await;
    let before = env.disconnect::<K>(&old_rv).await;
    // Many changes while disconnected, more than the history keeps:
    // a flips ten times and ends "db"; d comes; e comes and goes (never
    // seen); y is deleted and re-created under the same name (another
    // uid); b goes, last. c and x do not change.
    let mut a_now = a.clone();
    for i in 0..10 {
        a_now = env.relabel(&a_now, if i % 2 == 0 { "db" } else { "web" }).await;
    }
    a_now = env.relabel(&a_now, "db").await;
    let d: K = env.create("default", "d", "web").await;
    let _: K = env.create("default", "e", "web").await;
    env.delete::<K>("default", "e").await;
    env.delete::<K>("default", "y").await;
    let y2: K = env.create("default", "y", "db").await;
    env.delete::<K>("default", "b").await;
    assert_eq!(events.pending(), [], "no watch is open");
    env.clear_faults();

    let expected = [
        updated(&a, &a_now),
        added(&d, false),
        updated(&y, &y2),
        // Seen only as absence: the last known object, flagged.
        deleted(&b, &rv(&b), true),
    ];
    assert_eq!(events.next(expected.len(), "the relist's difference").await, expected);
    let list_rv = env.latest_rv();
    wait_for_rv(&informer, &list_rv).await;
    env.wait_for_request::<K>(before, "the watch after the relist", |r| {
        r.is_watch() && r.resource_version() == Some(list_rv.as_str())
    })
    .await;
    assert_eq!(events.pending(), [], "unchanged objects are not delivered");

    // Retried watches from the old resourceVersion, then one most-recent
    // relist, then a watch from the relist's resourceVersion.
    let requests = env.requests::<K>();
    let relist = before + requests[before..].iter().position(|r| !r.is_watch()).unwrap();
    assert!(
        requests[before..relist]
            .iter()
            .all(|r| r.is_watch() && r.resource_version() == Some(old_rv.as_str())),
        "{requests:?}"
    );
    assert_eq!(requests[relist].resource_version(), None);
    assert_eq!(env.lists::<K>(), 2, "{requests:?}");

    // The old resourceVersion is indeed gone, and said so the way
    // kube-apiserver does: HTTP 200, then one ERROR event with a 410 Status.
    let mut stream = Api::<K>::all(env.server.client())
        .watch(&WatchParams::default(), &old_rv)
        .await
        .expect("a watch too old is answered with 200")
        .boxed();
    match within("the expired watch's event", stream.next()).await {
        Some(Ok(WatchEvent::Error(status))) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"), "{status:?}");
        }
        other => panic!("expected an ERROR event with a 410 Status, got {other:?}"),
    }

    assert_consistent(
        &env,
        &informer,
        &["default/a", "default/c", "default/d", "default/x", "default/y"],
    );
    assert_eq!(index_keys(&informer, "db"), ["default/a", "default/x", "default/y"]);
    assert_eq!(index_keys(&informer, "web"), ["default/c", "default/d"]);
    assert_eq!(
        rv(informer.lister().get("default", "c").unwrap().as_ref()),
        rv(&unchanged_c)
    );
    assert_eq!(
        rv(informer.lister().get("default", "x").unwrap().as_ref()),
        rv(&unchanged_x)
    );
    assert_eq!(informer.lister().get("default", "y").unwrap().uid(), y2.uid());
    assert_ne!(y2.uid(), y.uid());
    assert_eq!(recorder.stale_store(), []);
    shutdown.cancel();
}

/// A watch request refused outright with HTTP 410 (the history still holds
/// the changes): kube's watcher alone would retry the same resourceVersion;
/// the informer relists and infers the delete.
async fn watch_refused_with_410_relists<K: Fixture>(transport: Transport) {
    let env = Harness::start(transport, Config::default()).await;
    let a: K = env.insert("default", "a", "web");
    let informer = Informer::<K>::new(Api::all(env.client.clone()), InformerConfig::default());
    informer.add_indexer("app", app_index::<K>).unwrap();
    let (recorder, mut events) = Recorder::new(informer.store());
    informer.add_event_handler(Arc::clone(&recorder));
    let shutdown = spawn(&informer);
    within("sync", informer.wait_for_sync()).await;
    events.pending();
    let old_rv = informer.last_resource_version().unwrap();
    env.wait_for_request::<K>(0, "the first watch", Request::is_watch).await;

    env.refuse_watches(&K::plural(&())).await;
    env.disconnect::<K>(&old_rv).await;
    env.delete::<K>("default", "a").await;
    let b: K = env.create("default", "b", "db").await;
    env.set_watch_fault(
        &K::plural(&()),
        FaultAction::Error {
            code: 410,
            retry_after_seconds: None,
            message: None,
        },
        Some(1),
    );

    let expected = [added(&b, false), deleted(&a, &rv(&a), true)];
    assert_eq!(events.next(2, "the relist's difference").await, expected);
    let list_rv = env.latest_rv();
    wait_for_rv(&informer, &list_rv).await;
    env.wait_for_request::<K>(0, "the watch after the relist", |r| {
        r.is_watch() && r.resource_version() == Some(list_rv.as_str())
    })
    .await;
    assert_eq!(events.pending(), []);
    assert_eq!(env.lists::<K>(), 2);
    assert_consistent(&env, &informer, &["default/b"]);
    assert_eq!(index_keys(&informer, "db"), ["default/b"]);
    assert_eq!(index_keys(&informer, "web"), Vec::<String>::new());
    assert_eq!(recorder.stale_store(), []);
    shutdown.cancel();
}

/// Writes to other resources move the resourceVersion; the server's
/// bookmarks carry it to the informer without any event, and the next
/// watch resumes from it.
async fn bookmarks_advance_resource_version_without_events<K: Fixture>(transport: Transport) {
    let env = Harness::start(
        transport,
        Config::default().bookmark_interval(Duration::from_millis(50)),
    )
    .await;
    let a: K = env.insert("default", "a", "web");
    let informer = Informer::<K>::new(Api::all(env.client.clone()), InformerConfig::default());
    informer.add_indexer("app", app_index::<K>).unwrap();
    let (recorder, mut events) = Recorder::new(informer.store());
    informer.add_event_handler(Arc::clone(&recorder));
    let shutdown = spawn(&informer);
    within("sync", informer.wait_for_sync()).await;
    assert_eq!(events.pending(), [added(&a, true)]);
    let list_rv = informer.last_resource_version().unwrap();
    env.wait_for_request::<K>(0, "the first watch", Request::is_watch).await;

    // Secrets, not K: no event for the informer, a newer resourceVersion.
    for i in 0..3 {
        let _: Secret = env.create("default", &format!("s{i}"), "web").await;
    }
    let bookmark_rv = env.latest_rv();
    assert_ne!(bookmark_rv, list_rv);
    wait_for_rv(&informer, &bookmark_rv).await;
    assert!(informer.progress().borrow().has_synced);
    assert_eq!(events.pending(), [], "bookmarks deliver nothing");

    // The next watch resumes from the bookmark's resourceVersion.
    let before = env.requests::<K>().len();
    env.server.close_watches();
    env.wait_for_request::<K>(before, "the watch after the bookmark", |r| {
        r.is_watch() && r.resource_version() == Some(bookmark_rv.as_str())
    })
    .await;
    assert_eq!(env.lists::<K>(), 1);
    // Events still flow, and are not delivered twice.
    let b: K = env.create("default", "b", "db").await;
    assert_eq!(events.next(1, "b added").await, [added(&b, false)]);
    wait_for_rv(&informer, &rv(&b)).await;
    assert_eq!(events.pending(), []);
    assert_consistent(&env, &informer, &["default/a", "default/b"]);
    assert_eq!(index_keys(&informer, "db"), ["default/b"]);
    assert_eq!(recorder.stale_store(), []);
    shutdown.cancel();
}

// ---------------------------------------------------------------------------
// The tests: every scenario in process and over HTTP.

macro_rules! on_both_transports {
    ($($name:ident => $scenario:expr;)*) => {
        mod in_process {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    Box::pin($scenario(Transport::InProcess)).await;
                }
            )*
        }
        mod over_http {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    Box::pin($scenario(Transport::Http)).await;
                }
            )*
        }
    };
}

on_both_transports! {
    configmaps_initial_list_then_watch_delivers_every_change_in_order => initial_list_then_watch::<ConfigMap>;
    pods_initial_list_then_watch_delivers_every_change_in_order => initial_list_then_watch::<Pod>;
    cut_watches_should_resume_from_last_resource_version => cut_watches_resume_from_last_resource_version::<ConfigMap>;
    timed_out_watches_should_resume_from_last_resource_version =>
        timed_out_watches_resume_from_last_resource_version::<ConfigMap>;
    refused_watch_should_resume_from_history_without_relisting => refused_watch_resumes_from_history::<ConfigMap>;
    expired_watch_should_relist_and_deliver_exactly_the_difference =>
        expired_watch_relists_and_delivers_exactly_the_difference::<ConfigMap>;
    expired_pod_watch_should_relist_and_deliver_exactly_the_difference =>
        expired_watch_relists_and_delivers_exactly_the_difference::<Pod>;
    watch_refused_with_410_should_be_recovered_by_a_relist => watch_refused_with_410_relists::<ConfigMap>;
    bookmarks_should_advance_resource_version_without_events =>
        bookmarks_advance_resource_version_without_events::<ConfigMap>;
}
