use std::time::Duration;

use ecm_apiserver::Config;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use serde_json::json;

use crate::{obj, start};

fn cm(name: &str, label: &str) -> ConfigMap {
    obj(json!({"metadata": {"name": name, "labels": {"app": label}}}))
}

async fn next_event(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin),
) -> WatchEvent<ConfigMap> {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an event in time")
        .expect("stream open")
        .unwrap()
}

fn name_of(ev: &WatchEvent<ConfigMap>) -> String {
    match ev {
        WatchEvent::Added(c) | WatchEvent::Modified(c) | WatchEvent::Deleted(c) => c.metadata.name.clone().unwrap(),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn watch_resumes_from_a_resource_version() {
    let h = start(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    cms.create(&PostParams::default(), &cm("a", "x")).await.unwrap();
    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    cms.create(&PostParams::default(), &cm("b", "x")).await.unwrap();
    cms.delete("a", &kube::api::DeleteParams::default()).await.unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().disable_bookmarks(), &rv)
        .await
        .unwrap()
        .boxed();
    let e1 = next_event(&mut stream).await;
    assert!(matches!(e1, WatchEvent::Added(_)) && name_of(&e1) == "b");
    let e2 = next_event(&mut stream).await;
    assert!(matches!(e2, WatchEvent::Deleted(_)) && name_of(&e2) == "a");
    cms.create(&PostParams::default(), &cm("c", "x")).await.unwrap();
    let e3 = next_event(&mut stream).await;
    assert_eq!(name_of(&e3), "c");
}

#[tokio::test]
async fn selector_watch_turns_label_changes_into_added_and_deleted() {
    let h = start(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().labels("app=web").disable_bookmarks(), &rv)
        .await
        .unwrap()
        .boxed();
    cms.create(&PostParams::default(), &cm("a", "db")).await.unwrap();
    let p = kube::api::Patch::Merge(json!({"metadata": {"labels": {"app": "web"}}}));
    cms.patch("a", &kube::api::PatchParams::default(), &p).await.unwrap();
    assert!(matches!(next_event(&mut stream).await, WatchEvent::Added(_)));
    let p = kube::api::Patch::Merge(json!({"metadata": {"labels": {"app": "db"}}}));
    cms.patch("a", &kube::api::PatchParams::default(), &p).await.unwrap();
    assert!(matches!(next_event(&mut stream).await, WatchEvent::Deleted(_)));
}

#[tokio::test]
async fn bookmarks_arrive_when_allowed() {
    let h = start(Config::default().bookmark_interval(Duration::from_millis(20))).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    cms.create(&PostParams::default(), &cm("a", "x")).await.unwrap();
    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = cms.watch(&WatchParams::default(), &rv).await.unwrap().boxed();
    match next_event(&mut stream).await {
        WatchEvent::Bookmark(b) => {
            assert!(b.metadata.resource_version.parse::<u64>().unwrap() >= rv.parse::<u64>().unwrap());
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn a_compacted_resource_version_gets_410_expired() {
    let h = start(Config::default().history_size(3)).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    for i in 0..5 {
        cms.create(&PostParams::default(), &cm(&format!("c{i}"), "x"))
            .await
            .unwrap();
    }
    let mut stream = cms.watch(&WatchParams::default(), &rv).await.unwrap().boxed();
    match next_event(&mut stream).await {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert_eq!(
                e.message,
                format!(
                    "too old resource version: {rv} ({})",
                    h.server.latest_resource_version() - 3
                )
            );
            assert!(e.message.starts_with("too old resource version: "), "{}", e.message);
        }
        other => panic!("expected 410, got {other:?}"),
    }
    let s = crate::status(
        cms.list(&ListParams::default().at(&rv).matching(kube::api::VersionMatch::Exact))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
}

#[tokio::test]
async fn watcher_relists_after_410() {
    let h = start(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    cms.create(&PostParams::default(), &cm("a", "x")).await.unwrap();
    let mut events = watcher(cms.clone(), watcher::Config::default()).boxed();
    let wait_init_done =
        async |events: &mut futures::stream::BoxStream<'_, Result<watcher::Event<ConfigMap>, watcher::Error>>| {
            let mut gone = false;
            loop {
                match tokio::time::timeout(Duration::from_secs(10), events.next())
                    .await
                    .expect("in time")
                    .expect("open")
                {
                    Ok(watcher::Event::InitDone) => return gone,
                    Err(watcher::Error::WatchError(s)) if s.code == 410 => gone = true,
                    _ => {}
                }
            }
        };
    assert!(!wait_init_done(&mut events).await);
    // Move past the watcher's resourceVersion, forget history, cut the stream.
    cms.create(&PostParams::default(), &cm("b", "x")).await.unwrap();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if matches!(ev, watcher::Event::Apply(ref c) if c.metadata.name.as_deref() == Some("b")) {
            break;
        }
    }
    // The next watch compacts history first; another resource moves the
    // global resourceVersion past the watcher's, so its resume gets 410.
    h.server.set_faults(ecm_apiserver::FaultConfig {
        seed: 0,
        rules: vec![
            ecm_apiserver::FaultRule::new("configmaps", &["watch"], ecm_apiserver::FaultAction::Compact).count(1),
        ],
    });
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(h.client.clone(), "default");
    secrets
        .create(&PostParams::default(), &obj(json!({"metadata": {"name": "s"}})))
        .await
        .unwrap();
    h.server.close_watches();
    assert!(wait_init_done(&mut events).await, "the watcher got 410 and relisted");
}

#[tokio::test]
async fn streaming_list_ends_initial_events_with_a_bookmark() {
    let h = start(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    for i in 0..3 {
        cms.create(&PostParams::default(), &cm(&format!("c{i}"), "x"))
            .await
            .unwrap();
    }
    let mut events = watcher(cms.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut seen = Vec::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match ev {
            watcher::Event::InitApply(c) => seen.push(c.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(seen, ["c0", "c1", "c2"]);
}

#[tokio::test]
async fn watch_timeout_ends_the_stream() {
    let h = start(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    let mut stream = cms
        .watch(&WatchParams::default().timeout(1).disable_bookmarks(), "0")
        .await
        .unwrap()
        .boxed();
    let end = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the stream ends");
    assert!(end.is_none());
}

/// Waits, with a deadline, until `cond` holds.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn open_watches_are_counted_until_closed() {
    let h = start(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    assert_eq!(h.server.open_watches(), 0);
    let mut first = cms.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    let mut second = cms.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    until("two open watches", || h.server.open_watches() == 2).await;
    h.server.close_watches();
    for stream in [&mut first, &mut second] {
        let end = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap();
        assert!(end.is_none(), "closed: {end:?}");
    }
    until("no open watch", || h.server.open_watches() == 0).await;
}
