//! Shadow mode's reports: `ecm shadow --once` exits 1 and lists the
//! divergences while nobody has written a Service's endpoints, and 0 once a
//! writer has; `/shadow` serves the report as JSON beside `/metrics`, whose
//! `ecm_shadow_*` series count the same divergences.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use ecm::controllers::ControllerName;
use ecm::explain::limits;
use ecm::health::{Health, install_metrics, serve_with_routes};
use ecm::listen::Listen;
use ecm::options::ControllerOptions;
use ecm::shadow::{Shadow, ShadowConfig, routes};
use ecm_apiserver::ApiServer;
use serde_json::{Value, json};
use support::{QUIET_DEADLINE, RunningController};
use tokio_util::sync::CancellationToken;

fn load(server: &ApiServer) {
    server
        .insert_object(
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        )
        .unwrap();
    server
        .insert_object(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.10", "ipFamilies": ["IPv4"], "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}))
        .unwrap();
    server
        .insert_object(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "app:1"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}))
        .unwrap();
}

fn shadow_once(kubeconfig: &std::path::Path) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ecm"))
        .args(["shadow", "--once", "--grace-period", "200ms", "--kubeconfig"])
        .arg(kubeconfig)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_1_with_the_divergences_then_0_when_the_objects_are_right() {
    let server = ApiServer::new(ecm_apiserver::Config::default()).unwrap();
    let listener = server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = std::env::temp_dir().join(format!("ecm-shadow-once-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    listener.write_kubeconfig(&kubeconfig).unwrap();
    load(&server);

    let (code, out) = tokio::task::spawn_blocking({
        let kubeconfig = kubeconfig.clone();
        move || shadow_once(&kubeconfig)
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("endpointslice-controller default/web"), "{out}");
    assert!(out.contains("endpoints-controller default/web"), "{out}");
    assert!(out.contains("why:"), "{out}");

    let client = server.client();
    for controller in [ControllerName::Endpoints, ControllerName::EndpointSlice] {
        let writer = RunningController::start(&client, controller, None);
        writer.quiet(&server).await;
        writer.stop().await;
    }
    let before = server.write_count();
    let (code, out) = tokio::task::spawn_blocking(move || shadow_once(&kubeconfig))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("No divergences."), "{out}");
    assert_eq!(server.write_count(), before, "shadow --once wrote");
    let _ = std::fs::remove_dir_all(dir);
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_serves_its_report_as_json_and_counts_divergences_in_metrics() {
    let handle = install_metrics().unwrap();
    let server = ApiServer::new(ecm_apiserver::Config::default()).unwrap();
    load(&server);
    let stop = CancellationToken::new();
    let shadow = Arc::new(Shadow::new(
        &server,
        ShadowConfig {
            controllers: BTreeSet::from([ControllerName::EndpointSlice]),
            limits: limits(&ControllerOptions::default()),
            grace_period: Duration::from_millis(100),
            workers: 1,
        },
        &stop,
        None,
    ));
    let running = tokio::spawn({
        let (shadow, stop) = (Arc::clone(&shadow), stop.clone());
        async move { shadow.run(stop).await }
    });
    let metrics = Listen::new("127.0.0.1:0".parse().unwrap(), "metrics-bind-address", true, false);
    let served = serve_with_routes(
        Health::new(),
        Some(handle),
        routes(Arc::clone(shadow.state())),
        None,
        Some(metrics),
        None,
        stop.clone(),
    )
    .await
    .unwrap();
    let addr = served.metrics.unwrap().addr;

    let deadline = tokio::time::Instant::now() + QUIET_DEADLINE;
    let report: Value = loop {
        let body = tokio::task::spawn_blocking(move || http_get(addr, "/shadow"))
            .await
            .unwrap();
        let report: Value = serde_json::from_str(&body).unwrap();
        if report["divergences"].as_array().is_some_and(|d| !d.is_empty()) {
            break report;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no divergence reported: {report}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let divergence = &report["divergences"][0];
    assert_eq!(divergence["controller"], "endpointslice-controller");
    assert_eq!(divergence["service"], "default/web");
    assert_eq!(divergence["field"], "object");
    assert_eq!(report["divergent_services"]["endpointslice-controller"], 1);

    let text = tokio::task::spawn_blocking(move || http_get(addr, "/metrics"))
        .await
        .unwrap();
    for line in [
        "ecm_shadow_services_compared{controller=\"endpointslice-controller\"} 1",
        "ecm_shadow_divergent_services{controller=\"endpointslice-controller\"} 1",
        "ecm_shadow_divergences{controller=\"endpointslice-controller\",field=\"object\"} 1",
        "ecm_shadow_divergences_reported_total{controller=\"endpointslice-controller\",field=\"object\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    stop.cancel();
    running.await.unwrap();
}
