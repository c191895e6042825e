use std::time::{Duration, Instant};

use ecm_apiserver::{Config, FaultAction, FaultConfig, FaultRule};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{obj, start, status};

fn rule(verbs: &[&str], action: FaultAction) -> FaultConfig {
    FaultConfig {
        seed: 1,
        rules: vec![FaultRule::new("configmaps", verbs, action)],
    }
}

fn error(code: u16) -> FaultAction {
    FaultAction::Error {
        code,
        retry_after_seconds: None,
        message: None,
    }
}

async fn raw_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn error_faults_answer_upstream_statuses() {
    let h = start(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    for (code, reason) in [
        (500, "InternalError"),
        (503, "ServiceUnavailable"),
        (409, "Conflict"),
        (429, "TooManyRequests"),
    ] {
        h.server.set_faults(rule(&["list"], error(code)));
        let s = status(cms.list(&ListParams::default()).await.unwrap_err());
        assert_eq!((s.code, s.reason.as_str()), (code, reason));
    }
    let raw = raw_get(h.handle.addr(), "/api/v1/namespaces/default/configmaps").await;
    assert!(raw.starts_with("HTTP/1.1 429"), "{raw}");
    assert!(raw.to_lowercase().contains("retry-after: 1"), "{raw}");
    h.server.set_faults(FaultConfig::default());
    cms.list(&ListParams::default()).await.unwrap();
}

#[tokio::test]
async fn faults_are_seeded_counted_and_per_verb() {
    let h = start(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    h.server.set_faults(FaultConfig {
        seed: 3,
        rules: vec![FaultRule::new("configmaps", &["create"], error(500)).count(2)],
    });
    cms.list(&ListParams::default()).await.unwrap();
    let c = |n: &str| -> ConfigMap { obj(json!({"metadata": {"name": n}})) };
    assert!(cms.create(&PostParams::default(), &c("a")).await.is_err());
    assert!(cms.create(&PostParams::default(), &c("a")).await.is_err());
    cms.create(&PostParams::default(), &c("a")).await.unwrap();

    let run = |seed| {
        let server = ecm_apiserver::ApiServer::new(Config::default()).unwrap();
        server.set_faults(FaultConfig {
            seed,
            rules: vec![FaultRule::new("configmaps", &["get"], error(503)).probability(0.5)],
        });
        server
    };
    let pattern = async |seed| {
        let server = run(seed);
        let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
        let mut v = Vec::new();
        for _ in 0..32 {
            v.push(matches!(api.get("x").await, Err(kube::Error::Api(ref s)) if s.code == 503));
        }
        v
    };
    let a = pattern(9).await;
    assert_eq!(a, pattern(9).await, "same seed, same faults");
    assert!(a.contains(&true) && a.contains(&false));
}

#[tokio::test]
async fn latency_fault_delays_requests() {
    let h = start(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    h.server
        .set_faults(rule(&["get"], FaultAction::Latency { millis: 200 }));
    let t = Instant::now();
    let _ = cms.get_opt("x").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn watch_cuts_and_compaction() {
    let h = start(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    for i in 0..5 {
        cms.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": format!("c{i}")}})),
        )
        .await
        .unwrap();
    }
    h.server
        .set_faults(rule(&["watch"], FaultAction::CutWatchAfterEvents { events: 2 }));
    let stream = cms
        .watch(&WatchParams::default().disable_bookmarks(), "1")
        .await
        .unwrap();
    let got: Vec<_> = tokio::time::timeout(Duration::from_secs(10), stream.collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(got.len(), 2);

    h.server
        .set_faults(rule(&["watch"], FaultAction::CutWatchAfter { millis: 100 }));
    let stream = cms
        .watch(&WatchParams::default().disable_bookmarks(), "0")
        .await
        .unwrap();
    let got: Vec<_> = tokio::time::timeout(Duration::from_secs(10), stream.collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(got.len(), 5, "initial events, then the cut");

    h.server.set_faults(rule(&["watch"], FaultAction::Compact));
    let mut stream = cms.watch(&WatchParams::default(), "1").await.unwrap().boxed();
    match tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        WatchEvent::Error(e) => assert_eq!(e.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test]
async fn admin_endpoint_configures_faults() {
    let h = start(Config::default()).await;
    let body = r#"{"seed": 1, "rules": [{"resource": "configmaps", "verbs": ["list"], "action": {"type": "error", "code": 503}}]}"#;
    let req = http::Request::put("/ecm-admin/faults")
        .body(body.as_bytes().to_vec())
        .unwrap();
    h.client.request_text(req).await.unwrap();
    assert_eq!(h.server.faults().rules.len(), 1);
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    assert_eq!(status(cms.list(&ListParams::default()).await.unwrap_err()).code, 503);
    let req = http::Request::delete("/ecm-admin/faults").body(Vec::new()).unwrap();
    h.client.request_text(req).await.unwrap();
    cms.list(&ListParams::default()).await.unwrap();
}
