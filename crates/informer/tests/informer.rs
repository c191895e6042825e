//! Informer behaviour against an API server speaking list/watch JSON.
//!
//! Each scenario is an `async fn` generic over [`ApiHarness`]; the
//! `#[tokio::test]`s run it against the in-process [`StubApiServer`] on
//! paused time (backoffs elapse instantly, deadlines are virtual). Running
//! the same scenarios against `ecm-apiserver` only needs an `ApiHarness`
//! implementation for it and one more `#[tokio::test]` per scenario.

// Test helpers outside `#[test]` functions panic on purpose too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use ecm_informer::{Informer, InformerConfig, InformerError, InformerFactory, Notification, Selector, handler_fn};
use ecm_types::PodProjection;
use k8s_openapi::api::core::v1::{Container, ContainerPort, Node, Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
use kube::api::Api;
use kube::{Resource, ResourceExt};
use support::{ApiHarness, Recorder, Seen, StubApiServer, keys, wait_for_request, within};
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------
// Fixtures.

fn pod(namespace: &str, name: &str, app: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            namespace: Some(namespace.into()),
            name: Some(name.into()),
            labels: Some(BTreeMap::from([("app".to_owned(), app.to_owned())])),
            managed_fields: Some(vec![ManagedFieldsEntry {
                manager: Some("kube-controller-manager".into()),
                operation: Some("Update".into()),
                api_version: Some("v1".into()),
                ..Default::default()
            }]),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some("node-1".into()),
            containers: vec![Container {
                name: "app".into(),
                ports: Some(vec![ContainerPort {
                    name: Some("http".into()),
                    container_port: 8080,
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            pod_ip: Some("10.0.0.1".into()),
            ..Default::default()
        }),
    }
}

fn relabel(pod: &Pod, app: &str) -> Pod {
    let mut pod = pod.clone();
    pod.metadata.labels = Some(BTreeMap::from([("app".to_owned(), app.to_owned())]));
    pod
}

fn rv<K: Resource>(obj: &K) -> String {
    obj.meta().resource_version.clone().unwrap()
}

fn app_index<S: Resource>(obj: &S) -> Vec<String> {
    obj.labels().get("app").cloned().into_iter().collect()
}

fn add(key: &str, rv: &str, initial: bool) -> Seen {
    Seen::Add {
        key: key.into(),
        rv: rv.into(),
        initial,
    }
}

fn update(key: &str, old_rv: &str, new_rv: &str) -> Seen {
    Seen::Update {
        key: key.into(),
        old_rv: old_rv.into(),
        new_rv: new_rv.into(),
    }
}

fn delete(key: &str, rv: &str, final_state_unknown: bool) -> Seen {
    Seen::Delete {
        key: key.into(),
        rv: rv.into(),
        final_state_unknown,
    }
}

fn sorted(mut seen: Vec<Seen>) -> Vec<Seen> {
    seen.sort_by_key(|s| format!("{s:?}"));
    seen
}

/// Runs the informer until the returned token is cancelled.
fn spawn<K, S>(informer: &Informer<K, S>) -> CancellationToken
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    S: Resource + Send + Sync + 'static,
{
    let shutdown = CancellationToken::new();
    let (informer, token) = (informer.clone(), shutdown.clone());
    tokio::spawn(async move { informer.run(token).await.unwrap() });
    shutdown
}

/// Waits until the informer reports `rv` as its last resourceVersion.
async fn wait_for_rv<K, S>(informer: &Informer<K, S>, rv: &str)
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    S: Resource + Send + Sync + 'static,
{
    let mut progress = informer.progress();
    within(
        &format!("resourceVersion {rv}"),
        progress.wait_for(|p| p.resource_version.as_deref() == Some(rv)),
    )
    .await
    .unwrap();
}

/// The store, the indexes and the server agree.
fn assert_consistent<S: Resource + Send + Sync + 'static>(informer: &Informer<Pod, S>, expected_keys: &[&str]) {
    let store = informer.store();
    let mut listed = store.list_keys();
    listed.sort();
    assert_eq!(listed, expected_keys);
    store.check_indexes().unwrap();
}

// ---------------------------------------------------------------------------
// Scenarios.

async fn initial_list_then_watch<H: ApiHarness>(server: H) {
    let a = server.create(&pod("default", "a", "web")).await;
    let b = server.create(&pod("default", "b", "db")).await;
    let c = server.create(&pod("other", "c", "web")).await;
    let list_rv = server.latest_resource_version();

    let informer = Informer::<Pod>::new(Api::all(server.client()), InformerConfig::default());
    informer.add_indexer("app", app_index).unwrap();
    let recorder = Recorder::new(informer.store());
    let registration = informer.add_event_handler(Arc::clone(&recorder));
    assert!(!registration.has_synced());
    let shutdown = spawn(&informer);
    within("initial sync", informer.wait_for_sync()).await;

    assert!(registration.has_synced());
    assert_eq!(
        sorted(recorder.take()),
        [
            add("default/a", &rv(&a), true),
            add("default/b", &rv(&b), true),
            add("other/c", &rv(&c), true)
        ]
    );
    assert_eq!(informer.last_resource_version().as_deref(), Some(list_rv.as_str()));
    // One most-recent list (no resourceVersion), then a watch from the list's.
    let list = &server.requests()[0];
    assert!(!list.watch);
    assert_eq!(list.resource_version(), None);
    let watch = wait_for_request(&server, 1, "watch", |r| r.watch).await;
    assert_eq!(watch.resource_version(), Some(list_rv.as_str()));
    assert_eq!(
        watch.params.get("allowWatchBookmarks").map(String::as_str),
        Some("true")
    );

    let d = server.create(&pod("default", "d", "web")).await;
    let a2 = server.replace(&relabel(&a, "db")).await;
    let b_gone: Pod = server.delete("default", "b").await;
    recorder.wait_for(3).await;
    assert_eq!(
        recorder.take(),
        [
            add("default/d", &rv(&d), false),
            update("default/a", &rv(&a), &rv(&a2)),
            delete("default/b", &rv(&b_gone), false),
        ]
    );
    wait_for_rv(&informer, &server.latest_resource_version()).await;

    assert_consistent(&informer, &["default/a", "default/d", "other/c"]);
    assert_eq!(
        keys(&informer.store().by_index("app", "web").unwrap()),
        ["default/d", "other/c"]
    );
    assert_eq!(keys(&informer.store().by_index("app", "db").unwrap()), ["default/a"]);
    let web: Selector = "app=web".parse().unwrap();
    assert_eq!(keys(&informer.lister().list("default", &web)), ["default/d"]);
    assert_eq!(keys(&informer.lister().list("", &web)), ["default/d", "other/c"]);
    // The default transform strips managedFields.
    assert!(
        informer
            .lister()
            .get("default", "a")
            .unwrap()
            .metadata
            .managed_fields
            .is_none()
    );
    assert!(
        recorder.stale_store().is_empty(),
        "handlers ran before the store changed: {:?}",
        recorder.stale_store()
    );
    shutdown.cancel();
}

async fn ended_watch_resumes_from_last_resource_version<H: ApiHarness>(server: H) {
    server.create(&pod("default", "a", "web")).await;
    let informer = Informer::<Pod>::new(Api::all(server.client()), InformerConfig::default());
    let recorder = Recorder::new(informer.store());
    informer.add_event_handler(Arc::clone(&recorder));
    let shutdown = spawn(&informer);
    within("sync", informer.wait_for_sync()).await;
    wait_for_request(&server, 0, "first watch", |r| r.watch).await;
    recorder.take();

    let b = server.create(&pod("default", "b", "web")).await;
    recorder.wait_for(1).await;
    wait_for_rv(&informer, &rv(&b)).await;

    let before = server.requests().len();
    server.end_watches();
    let resumed = wait_for_request(&server, before, "resumed watch", |r| r.watch).await;
    assert_eq!(resumed.resource_version(), Some(rv(&b).as_str()));
    let c = server.create(&pod("default", "c", "web")).await;
    recorder.wait_for(2).await;
    wait_for_rv(&informer, &rv(&c)).await;

    // No relist: every request since is a watch; nothing was delivered twice.
    assert!(
        server.requests()[before..].iter().all(|r| r.watch),
        "{:?}",
        server.requests()
    );
    assert_eq!(
        recorder.take(),
        [add("default/b", &rv(&b), false), add("default/c", &rv(&c), false)]
    );
    assert_consistent(&informer, &["default/a", "default/b", "default/c"]);
    shutdown.cancel();
}

async fn bookmarks_advance_resource_version_without_events<H: ApiHarness>(server: H) {
    server.create(&pod("default", "a", "web")).await;
    let informer = Informer::<Pod>::new(Api::all(server.client()), InformerConfig::default());
    let recorder = Recorder::new(informer.store());
    informer.add_event_handler(Arc::clone(&recorder));
    let shutdown = spawn(&informer);
    within("sync", informer.wait_for_sync()).await;
    wait_for_request(&server, 0, "first watch", |r| r.watch).await;
    recorder.take();

    // Writes to other resources move the resourceVersion; a bookmark tells.
    server.bump_resource_version();
    server.bump_resource_version();
    let bookmark_rv = server.latest_resource_version();
    server.send_bookmarks();
    wait_for_rv(&informer, &bookmark_rv).await;
    assert!(recorder.take().is_empty());

    // The next watch resumes from the bookmark.
    let before = server.requests().len();
    server.end_watches();
    let resumed = wait_for_request(&server, before, "resumed watch", |r| r.watch).await;
    assert_eq!(resumed.resource_version(), Some(bookmark_rv.as_str()));
    assert_consistent(&informer, &["default/a"]);
    shutdown.cancel();
}

async fn expired_watch_relists_and_delivers_exactly_the_difference<H: ApiHarness>(server: H) {
    let a = server.create(&pod("default", "a", "web")).await;
    let b = server.create(&pod("default", "b", "web")).await;
    let c = server.create(&pod("default", "c", "web")).await;
    server.create(&pod("default", "x", "db")).await;
    let informer = Informer::<Pod>::new(Api::all(server.client()), InformerConfig::default());
    informer.add_indexer("app", app_index).unwrap();
    let recorder = Recorder::new(informer.store());
    informer.add_event_handler(Arc::clone(&recorder));
    let shutdown = spawn(&informer);
    within("sync", informer.wait_for_sync()).await;
    wait_for_request(&server, 0, "first watch", |r| r.watch).await;
    recorder.take();
    let old_rv = informer.last_resource_version().unwrap();

    // While the informer is disconnected: a changes, d comes, b goes (last,
    // so the list's resourceVersion is newer than any listed object's), c
    // and x stay as they were; then the history is compacted.
    server.disconnect();
    let a2 = server.replace(&relabel(&a, "db")).await;
    let d = server.create(&pod("default", "d", "web")).await;
    let _: Pod = server.delete("default", "b").await;
    server.compact();
    let before = server.requests().len();
    server.reconnect();

    recorder.wait_for(3).await;
    let list_rv = server.latest_resource_version();
    wait_for_rv(&informer, &list_rv).await;
    wait_for_request(&server, before, "watch after relist", |r| {
        r.watch && r.resource_version() == Some(list_rv.as_str())
    })
    .await;
    assert_eq!(
        recorder.take(),
        [
            update("default/a", &rv(&a), &rv(&a2)),
            add("default/d", &rv(&d), false),
            // Seen only as absence: the last known object, flagged.
            delete("default/b", &rv(&b), true),
        ]
    );
    // The held watch (from the old resourceVersion) got 410, then a
    // most-recent relist, then a watch from the relist's resourceVersion.
    let requests = server.requests();
    let first_list_after = requests
        .iter()
        .skip(before)
        .position(|r| !r.watch)
        .map(|i| i + before)
        .unwrap();
    assert!(
        requests[..first_list_after]
            .iter()
            .rev()
            .find(|r| r.watch)
            .unwrap()
            .resource_version()
            == Some(old_rv.as_str())
    );
    assert_eq!(requests[first_list_after].resource_version(), None);
    assert_eq!(requests.iter().filter(|r| !r.watch).count(), 2);

    assert_consistent(&informer, &["default/a", "default/c", "default/d", "default/x"]);
    assert_eq!(
        keys(&informer.store().by_index("app", "db").unwrap()),
        ["default/a", "default/x"]
    );
    assert_eq!(
        keys(&informer.store().by_index("app", "web").unwrap()),
        ["default/c", "default/d"]
    );
    assert_eq!(
        rv(informer
            .store()
            .get_by_key(&"default/c".parse().unwrap())
            .unwrap()
            .as_ref()),
        rv(&c)
    );
    assert!(recorder.stale_store().is_empty(), "{:?}", recorder.stale_store());
    shutdown.cancel();
}

async fn refused_watch_is_recovered_by_a_relist(server: StubApiServer) {
    let a = server.create(&pod("default", "a", "web")).await;
    let informer = Informer::<Pod>::new(Api::all(server.client()), InformerConfig::default());
    let recorder = Recorder::new(informer.store());
    informer.add_event_handler(Arc::clone(&recorder));
    let shutdown = spawn(&informer);
    within("sync", informer.wait_for_sync()).await;
    wait_for_request(&server, 0, "first watch", |r| r.watch).await;
    recorder.take();

    // The watch is refused outright with HTTP 410. The history is still
    // there, so a watcher retrying the same resourceVersion would replay a
    // delete it had seen; the informer relists instead and infers it.
    server.disconnect();
    let _: Pod = server.delete("default", "a").await;
    let b = server.create(&pod("default", "b", "web")).await;
    server.refuse_next_watches(1);
    server.reconnect();

    recorder.wait_for(2).await;
    wait_for_rv(&informer, &server.latest_resource_version()).await;
    assert_eq!(
        recorder.take(),
        [add("default/b", &rv(&b), false), delete("default/a", &rv(&a), true)]
    );
    assert_eq!(server.requests().iter().filter(|r| !r.watch).count(), 2);
    assert_consistent(&informer, &["default/b"]);
    shutdown.cancel();
}

async fn late_handler_gets_the_cache_as_initial_adds<H: ApiHarness>(server: H) {
    let a = server.create(&pod("default", "a", "web")).await;
    let b = server.create(&pod("default", "b", "web")).await;
    let informer = Informer::<Pod>::new(Api::all(server.client()), InformerConfig::default());
    let early = Recorder::new(informer.store());
    informer.add_event_handler(Arc::clone(&early));
    let shutdown = spawn(&informer);
    within("sync", informer.wait_for_sync()).await;
    let c = server.create(&pod("default", "c", "web")).await;
    early.wait_for(3).await;

    let late = Recorder::new(informer.store());
    let registration = informer.add_event_handler(Arc::clone(&late));
    // Delivered synchronously, before add_event_handler returned.
    assert_eq!(
        sorted(late.seen()),
        [
            add("default/a", &rv(&a), true),
            add("default/b", &rv(&b), true),
            add("default/c", &rv(&c), true)
        ]
    );
    assert!(registration.has_synced());

    let c2 = server.replace(&relabel(&c, "db")).await;
    early.wait_for(4).await;
    late.wait_for(4).await;
    assert_eq!(late.seen()[3], update("default/c", &rv(&c), &rv(&c2)));

    assert!(informer.remove_event_handler(&registration));
    assert!(!informer.remove_event_handler(&registration));
    server.create(&pod("default", "d", "web")).await;
    early.wait_for(5).await;
    assert_eq!(late.len(), 4);
    shutdown.cancel();
}

async fn wait_for_sync_waits_for_the_first_list_to_be_delivered(server: StubApiServer) {
    server.create(&pod("default", "a", "web")).await;
    server.fail_next_lists(2);
    let informer = Informer::<Pod>::new(Api::all(server.client()), InformerConfig::default());
    let synced_during_initial_add = Arc::new(AtomicBool::new(true));
    informer.add_event_handler(handler_fn({
        let (informer, flag) = (informer.clone(), Arc::clone(&synced_during_initial_add));
        move |n: Notification<Pod>| {
            if let Notification::Add {
                is_initial_list: true, ..
            } = n
            {
                flag.store(informer.has_synced(), Ordering::SeqCst);
            }
        }
    }));
    let shutdown = spawn(&informer);

    // Two failed lists (each followed by a backoff), and not synced meanwhile.
    wait_for_request(&server, 1, "second list", |r| !r.watch).await;
    assert!(!informer.has_synced());
    assert_eq!(informer.last_resource_version(), None);
    within("sync", informer.wait_for_sync()).await;
    assert!(informer.has_synced());
    assert_eq!(server.requests().iter().filter(|r| !r.watch).count(), 3);
    // Handlers got the initial list before the informer reported synced.
    assert!(!synced_during_initial_add.load(Ordering::SeqCst));
    shutdown.cancel();
}

async fn namespaced_informer_watches_one_namespace<H: ApiHarness>(server: H) {
    server.create(&pod("a", "p1", "web")).await;
    server.create(&pod("b", "p2", "web")).await;
    let informer = Informer::<Pod>::new(Api::namespaced(server.client(), "a"), InformerConfig::default());
    let recorder = Recorder::new(informer.store());
    informer.add_event_handler(Arc::clone(&recorder));
    let shutdown = spawn(&informer);
    within("sync", informer.wait_for_sync()).await;
    wait_for_request(&server, 0, "watch", |r| r.watch).await;
    server.create(&pod("b", "p3", "web")).await;
    let p4 = server.create(&pod("a", "p4", "web")).await;
    wait_for_rv(&informer, &rv(&p4)).await;

    assert_eq!(keys(&informer.lister().list_all()), ["a/p1", "a/p4"]);
    assert_eq!(recorder.len(), 2);
    assert!(
        server.requests().iter().all(|r| r.namespace.as_deref() == Some("a")),
        "{:?}",
        server.requests()
    );
    shutdown.cancel();
}

async fn cluster_scoped_objects_are_keyed_by_name<H: ApiHarness>(server: H) {
    let node = |name: &str| Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    server.create(&node("node-1")).await;
    let informer = Informer::<Node>::new(Api::all(server.client()), InformerConfig::default());
    let recorder = Recorder::new(informer.store());
    informer.add_event_handler(Arc::clone(&recorder));
    let shutdown = spawn(&informer);
    within("sync", informer.wait_for_sync()).await;
    let n2 = server.create(&node("node-2")).await;
    wait_for_rv(&informer, &rv(&n2)).await;
    assert!(informer.lister().get("", "node-2").is_some());
    assert_eq!(
        keys(&informer.store().by_index("namespace", "").unwrap()),
        ["node-1", "node-2"]
    );
    assert_eq!(
        recorder.take(),
        [add("node-1", "1", true), add("node-2", &rv(&n2), false)]
    );
    shutdown.cancel();
}

async fn projections_are_cached_and_diffed_like_objects<H: ApiHarness>(server: H) {
    let a = server.create(&pod("default", "a", "web")).await;
    server.create(&pod("default", "b", "web")).await;
    let informer: Informer<Pod, PodProjection> = Informer::with_transform(
        Api::all(server.client()),
        InformerConfig::default(),
        PodProjection::from,
    );
    informer
        .add_indexer("node", |p: &PodProjection| p.node_name.clone().into_iter().collect())
        .unwrap();
    let recorder = Recorder::new(informer.store());
    informer.add_event_handler(Arc::clone(&recorder));
    let shutdown = spawn(&informer);
    within("sync", informer.wait_for_sync()).await;
    wait_for_request(&server, 0, "watch", |r| r.watch).await;
    recorder.take();

    let cached = informer.lister().get("default", "a").unwrap();
    assert_eq!(cached.pod_ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(cached.named_ports[0].container_port, 8080);
    assert_eq!(
        keys(&informer.store().by_index("node", "node-1").unwrap()),
        ["default/a", "default/b"]
    );

    // A relist where only b changed: one update, nothing for a.
    server.disconnect();
    let b2 = server.replace(&relabel(&pod("default", "b", "web"), "db")).await;
    server.compact();
    server.reconnect();
    recorder.wait_for(1).await;
    wait_for_rv(&informer, &server.latest_resource_version()).await;
    let seen = recorder.take();
    assert_eq!(seen.len(), 1);
    assert!(matches!(&seen[0], Seen::Update { key, new_rv, .. } if key == "default/b" && *new_rv == rv(&b2)));
    assert_eq!(rv(informer.lister().get("default", "a").unwrap().as_ref()), rv(&a));
    assert_consistent(&informer, &["default/a", "default/b"]);
    shutdown.cancel();
}

/// The transform sees each object's managedFields only when the config asks
/// for them: by default they are skipped while decoding, in the list and
/// in watch events alike.
async fn managed_fields_reach_a_transform_only_when_asked<H: ApiHarness>(server: H) {
    server.create(&pod("default", "a", "web")).await;
    for decode in [false, true] {
        // What each object's managedFields held when the transform saw it.
        let seen: Arc<parking_lot::Mutex<Vec<(String, usize)>>> = Arc::default();
        let informer: Informer<Pod, Pod> = Informer::with_transform(
            Api::all(server.client()),
            InformerConfig::default().managed_fields(decode),
            {
                let seen = Arc::clone(&seen);
                move |pod: Pod| {
                    let entries = pod.metadata.managed_fields.as_ref().map_or(0, Vec::len);
                    seen.lock().push((pod.name_any(), entries));
                    pod
                }
            },
        );
        let shutdown = spawn(&informer);
        within("sync", informer.wait_for_sync()).await;
        wait_for_request(&server, 0, "watch", |r| r.watch).await;
        let name = format!("b-{decode}");
        let b = server.create(&pod("default", &name, "web")).await;
        wait_for_rv(&informer, &rv(&b)).await;
        let entries = usize::from(decode);
        let mut seen = seen.lock().clone();
        seen.retain(|(n, _)| n == "a" || *n == name);
        assert_eq!(
            seen,
            [("a".to_owned(), entries), (name, entries)],
            "managed_fields({decode})"
        );
        shutdown.cancel();
    }
}

async fn factory_shares_informers_and_starts_them_once<H: ApiHarness>(server: H) {
    server.create(&pod("default", "a", "web")).await;
    let factory = InformerFactory::new(server.client());
    let pods = factory.informer::<Pod>();
    let same = factory.informer::<Pod>();
    let projected = factory.informer_as::<Pod, PodProjection>();
    pods.add_indexer("app", app_index).unwrap();
    assert!(
        same.store().index_names().contains(&"app".to_owned()),
        "same informer, same store"
    );
    assert!(
        !projected.store().index_names().contains(&"app".to_owned()),
        "another stored type, another informer"
    );

    factory.start();
    within("factory sync", factory.wait_for_cache_sync()).await;
    assert!(factory.has_synced() && same.has_synced() && projected.has_synced());
    factory.start();
    wait_for_request(&server, 0, "watches", |_| {
        server.requests().iter().filter(|r| r.watch).count() == 2
    })
    .await;
    assert_eq!(
        server.requests().iter().filter(|r| !r.watch).count(),
        2,
        "one list per informer"
    );

    // An informer created after start is started by the next start().
    let nodes = factory.informer::<Node>();
    assert!(!nodes.is_started());
    factory.start();
    within("node sync", nodes.wait_for_sync()).await;

    within("shutdown", factory.shutdown()).await;
    assert_eq!(
        pods.run(CancellationToken::new()).await,
        Err(InformerError::AlreadyStarted("pods".into()))
    );
}

// ---------------------------------------------------------------------------
// The tests: every scenario against the stub server.

#[tokio::test(start_paused = true)]
async fn initial_list_then_watch_delivers_every_change_in_order() {
    Box::pin(initial_list_then_watch(StubApiServer::new())).await;
}

#[tokio::test(start_paused = true)]
async fn ended_watch_should_resume_from_last_resource_version_without_relisting() {
    Box::pin(ended_watch_resumes_from_last_resource_version(StubApiServer::new())).await;
}

#[tokio::test(start_paused = true)]
async fn bookmarks_should_advance_resource_version_without_events() {
    Box::pin(bookmarks_advance_resource_version_without_events(StubApiServer::new())).await;
}

#[tokio::test(start_paused = true)]
async fn gone_watch_should_relist_and_deliver_exactly_the_difference() {
    Box::pin(expired_watch_relists_and_delivers_exactly_the_difference(
        StubApiServer::new(),
    ))
    .await;
}

#[tokio::test(start_paused = true)]
async fn watch_refused_with_410_should_be_recovered_by_a_relist() {
    Box::pin(refused_watch_is_recovered_by_a_relist(StubApiServer::new())).await;
}

#[tokio::test(start_paused = true)]
async fn late_handler_should_get_cached_objects_as_initial_adds() {
    Box::pin(late_handler_gets_the_cache_as_initial_adds(StubApiServer::new())).await;
}

#[tokio::test(start_paused = true)]
async fn wait_for_sync_should_wait_for_the_first_list_to_be_delivered() {
    Box::pin(wait_for_sync_waits_for_the_first_list_to_be_delivered(
        StubApiServer::new(),
    ))
    .await;
}

#[tokio::test(start_paused = true)]
async fn namespaced_informer_should_watch_one_namespace() {
    Box::pin(namespaced_informer_watches_one_namespace(StubApiServer::new())).await;
}

#[tokio::test(start_paused = true)]
async fn cluster_scoped_objects_should_be_keyed_by_name() {
    Box::pin(cluster_scoped_objects_are_keyed_by_name(StubApiServer::new())).await;
}

#[tokio::test(start_paused = true)]
async fn projections_should_be_cached_and_diffed_like_objects() {
    Box::pin(projections_are_cached_and_diffed_like_objects(StubApiServer::new())).await;
}

#[tokio::test(start_paused = true)]
async fn managed_fields_should_reach_a_transform_only_when_asked() {
    Box::pin(managed_fields_reach_a_transform_only_when_asked(StubApiServer::new())).await;
}

#[tokio::test(start_paused = true)]
async fn factory_should_share_informers_and_start_them_once() {
    Box::pin(factory_shares_informers_and_starts_them_once(StubApiServer::new())).await;
}

#[tokio::test(start_paused = true)]
async fn resync_should_hand_every_cached_object_over_again_each_period() {
    let server = StubApiServer::new();
    let a = server.create(&pod("default", "a", "web")).await;
    let b = server.create(&pod("default", "b", "db")).await;
    let period = std::time::Duration::from_secs(3600);
    let informer = Informer::<Pod>::new(
        Api::all(server.client()),
        InformerConfig::default().resync_period(Some(period)),
    );
    let recorder = Recorder::new(informer.store());
    informer.add_event_handler(Arc::clone(&recorder));
    let started = tokio::time::Instant::now();
    let shutdown = spawn(&informer);
    within("sync", informer.wait_for_sync()).await;
    recorder.wait_for(2).await;
    recorder.take();

    // Nothing before the period is up; then each object once, unchanged.
    tokio::time::sleep_until(started + period - std::time::Duration::from_secs(1)).await;
    assert_eq!(recorder.take(), []);
    tokio::time::sleep_until(started + period).await;
    recorder.wait_for(2).await;
    assert_eq!(
        sorted(recorder.take()),
        [
            update("default/a", &rv(&a), &rv(&a)),
            update("default/b", &rv(&b), &rv(&b))
        ]
    );
    // A change between resyncs comes as usual; the next resync includes it.
    let c = server.create(&pod("default", "c", "web")).await;
    recorder.wait_for(1).await;
    assert_eq!(recorder.take(), [add("default/c", &rv(&c), false)]);
    tokio::time::sleep_until(started + period * 2).await;
    recorder.wait_for(3).await;
    assert_eq!(
        sorted(recorder.take()),
        [
            update("default/a", &rv(&a), &rv(&a)),
            update("default/b", &rv(&b), &rv(&b)),
            update("default/c", &rv(&c), &rv(&c))
        ]
    );
    shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn no_resync_by_default_or_with_a_zero_period() {
    assert_eq!(InformerConfig::default().resync_period, None);
    let zero = InformerConfig::default().resync_period(Some(std::time::Duration::ZERO));
    assert_eq!(zero.resync_period, None);
    let server = StubApiServer::new();
    server.create(&pod("default", "a", "web")).await;
    let informer = Informer::<Pod>::new(Api::all(server.client()), zero);
    let recorder = Recorder::new(informer.store());
    informer.add_event_handler(Arc::clone(&recorder));
    let shutdown = spawn(&informer);
    within("sync", informer.wait_for_sync()).await;
    recorder.wait_for(1).await;
    recorder.take();
    tokio::time::sleep(std::time::Duration::from_secs(48 * 3600)).await;
    assert_eq!(recorder.take(), []);
    shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn run_twice_should_fail() {
    let server = StubApiServer::new();
    let informer = Informer::<Pod>::new(Api::all(server.client()), InformerConfig::default().name("twice"));
    let shutdown = spawn(&informer);
    within("sync", informer.wait_for_sync()).await;
    assert_eq!(
        informer.run(CancellationToken::new()).await,
        Err(InformerError::AlreadyStarted("twice".into()))
    );
    shutdown.cancel();
}

static METRICS: OnceLock<metrics_util::debugging::Snapshotter> = OnceLock::new();

#[tokio::test(start_paused = true)]
async fn metrics_should_count_events_relists_and_restarts() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let snapshotter = METRICS.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().unwrap();
        snapshotter
    });
    let server = StubApiServer::new();
    server.create(&pod("default", "a", "web")).await;
    server.create(&pod("default", "b", "web")).await;
    let informer = Informer::<Pod>::new(
        Api::all(server.client()),
        InformerConfig::default().name("metered-pods"),
    );
    let recorder = Recorder::new(informer.store());
    informer.add_event_handler(Arc::clone(&recorder));
    let shutdown = spawn(&informer);
    within("sync", informer.wait_for_sync()).await;
    server.create(&pod("default", "c", "web")).await;
    recorder.wait_for(3).await;
    // A watch that ends: one restart.
    let before = server.requests().len();
    server.end_watches();
    wait_for_request(&server, before, "resumed watch", |r| r.watch).await;
    // A watch that expires: a second restart, a watch error, a relist.
    server.disconnect();
    let _: Pod = server.delete("default", "a").await;
    server.compact();
    let before = server.requests().len();
    server.reconnect();
    recorder.wait_for(4).await;
    wait_for_request(&server, before, "watch after relist", |r| {
        r.watch && r.resource_version() == Some(server.latest_resource_version().as_str())
    })
    .await;

    let snapshot: Vec<(String, Vec<(String, String)>, DebugValue)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (_, key) = key.into_parts();
            let labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            (key.name().to_owned(), labels, value)
        })
        .filter(|(_, labels, _)| labels.contains(&("resource".to_owned(), "metered-pods".to_owned())))
        .collect();
    let value = |name: &str, extra: Option<(&str, &str)>| {
        snapshot
            .iter()
            .find(|(n, labels, _)| {
                n == name && extra.is_none_or(|(k, v)| labels.contains(&(k.to_owned(), v.to_owned())))
            })
            .map(|(_, _, v)| v)
    };
    use ecm_informer::metrics::*;
    assert_eq!(
        value(EVENTS_TOTAL, Some(("event", "add"))),
        Some(&DebugValue::Counter(3))
    );
    assert_eq!(
        value(EVENTS_TOTAL, Some(("event", "update"))),
        Some(&DebugValue::Counter(0))
    );
    assert_eq!(
        value(EVENTS_TOTAL, Some(("event", "delete"))),
        Some(&DebugValue::Counter(1))
    );
    assert_eq!(value(RELISTS_TOTAL, None), Some(&DebugValue::Counter(1)));
    assert_eq!(value(WATCH_RESTARTS_TOTAL, None), Some(&DebugValue::Counter(2)));
    assert_eq!(
        value(WATCH_ERRORS_TOTAL, Some(("error", "watch_event"))),
        Some(&DebugValue::Counter(1))
    );
    assert_eq!(value(STORE_OBJECTS, None), Some(&DebugValue::Gauge(2.0.into())));
    shutdown.cancel();
}
