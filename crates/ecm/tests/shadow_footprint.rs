//! Shadow mode's memory and CPU beside normal operation, on 300 Services ×
//! 10 pods (3 000 ready pods on 3 nodes) served by ecm-apiserver over HTTP:
//! the `ecm` binary as a child process, measured from `/proc` (CPU time,
//! resident and peak resident memory).
//!
//! - normal: `ecm run` writes every Endpoints and EndpointSlice, then
//!   follows a churn of 1 200 pod readiness flips;
//! - shadow: an in-process writer (the same controllers) writes them, and
//!   `ecm shadow` beside it compares, then follows the same churn.
//!
//! Linux only (reads `/proc`). Run in release and read the printed table
//! (docs/benchmarks.md):
//!
//! ```sh
//! cargo test --release -p ecm --test shadow_footprint -- --ignored --nocapture
//! ```

// A measurement: printing is its job; a failed unwrap is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod support;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ecm::controller_set::ControllerSet;
use ecm::controllers::ControllerName;
use ecm::options::ControllerOptions;
use ecm_apiserver::{ApiServer, ServeHandle};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const SERVICES: usize = 300;
const PODS_PER_SERVICE: usize = 10;
const NODES: usize = 3;
/// Pods flipped per Service in each churn round, and rounds.
const FLIPS: usize = 2;
const ROUNDS: usize = 2;

fn pod_ip(service: usize, pod: usize) -> String {
    let n = service * PODS_PER_SERVICE + pod;
    format!("10.{}.{}.{}", n / 65536 + 1, (n / 256) % 256, n % 256)
}

fn load(server: &ApiServer) {
    for n in 0..NODES {
        server
            .insert_object(json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": format!("node-{n}"), "labels": {"topology.kubernetes.io/zone": format!("zone-{n}")}},
                "status": {"conditions": [{"type": "Ready", "status": "True"}], "allocatable": {"cpu": "8"}}}))
            .unwrap();
    }
    for s in 0..SERVICES {
        server
            .insert_object(json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": format!("svc-{s}"), "namespace": "default"},
                "spec": {"selector": {"app": format!("app-{s}")}, "clusterIP": format!("10.96.{}.{}", s / 256, s % 256),
                         "ipFamilies": ["IPv4"], "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}))
            .unwrap();
        for p in 0..PODS_PER_SERVICE {
            server.insert_object(pod(s, p, true)).unwrap();
        }
    }
}

fn pod(s: usize, p: usize, ready: bool) -> Value {
    let ip = pod_ip(s, p);
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("svc-{s}-{p}"), "namespace": "default", "labels": {"app": format!("app-{s}")}},
        "spec": {"nodeName": format!("node-{}", p % NODES), "containers": [{"name": "app", "image": "app:1"}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                   "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
}

/// Ready endpoints over all managed slices and ready Endpoints addresses.
fn ready_counts(server: &ApiServer) -> (usize, usize) {
    let slices: usize = server
        .list_objects("endpointslices")
        .iter()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .filter(|e| e.pointer("/conditions/ready") == Some(&Value::Bool(true)))
        .count();
    let endpoints: usize = server
        .list_objects("endpoints")
        .iter()
        .flat_map(|e| e["subsets"].as_array().cloned().unwrap_or_default())
        .map(|s| s["addresses"].as_array().map_or(0, Vec::len))
        .sum();
    (slices, endpoints)
}

/// CPU seconds (user + system) and resident / peak resident KiB of `pid`.
fn usage(pid: u32) -> (f64, u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (ticks / 100.0, kib("VmRSS:"), kib("VmHWM:"))
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !check() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn churn(server: &ApiServer) {
    for round in 0..ROUNDS {
        let ready = round % 2 == 1;
        for s in 0..SERVICES {
            for p in 0..FLIPS {
                let mut object = server
                    .get_object("pods", Some("default"), &format!("svc-{s}-{p}"))
                    .unwrap();
                object["status"]["conditions"] =
                    json!([{"type": "Ready", "status": if ready { "True" } else { "False" }}]);
                object["metadata"].as_object_mut().unwrap().remove("resourceVersion");
                server.insert_object(object).unwrap();
            }
            // 600 flips a second: a steady stream, not one burst.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
}

fn spawn(args: &[&str], kubeconfig: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ecm"))
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--health-probe-bind-address", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

struct Figures {
    start_cpu: f64,
    churn_cpu: f64,
    rss: u64,
    peak: u64,
}

async fn setup() -> (ApiServer, ServeHandle, std::path::PathBuf) {
    let server = ApiServer::new(ecm_apiserver::Config::default()).unwrap();
    load(&server);
    let listener = server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let kubeconfig = std::env::temp_dir().join(format!("ecm-footprint-{}.kubeconfig", std::process::id()));
    listener.write_kubeconfig(&kubeconfig).unwrap();
    (server, listener, kubeconfig)
}

const ALL_READY: (usize, usize) = (SERVICES * PODS_PER_SERVICE, SERVICES * PODS_PER_SERVICE);

async fn normal() -> Figures {
    let (server, _listener, kubeconfig) = setup().await;
    let mut child = spawn(
        &["run", "--leader-elect=false", "--metrics-bind-address", "0"],
        &kubeconfig,
    );
    let pid = child.id();
    until("ecm run converges", || ready_counts(&server) == ALL_READY).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (start_cpu, _, _) = usage(pid);
    churn(&server).await;
    until("ecm run follows the churn", || ready_counts(&server) == ALL_READY).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu, rss, peak) = usage(pid);
    child.kill().unwrap();
    child.wait().unwrap();
    Figures {
        start_cpu,
        churn_cpu: cpu - start_cpu,
        rss,
        peak,
    }
}

fn shadow_report(addr: &str) -> Option<Value> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(stream, "GET /shadow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    serde_json::from_str(response.split_once("\r\n\r\n")?.1).ok()
}

fn settled(report: Option<Value>) -> bool {
    report.is_some_and(|r| {
        r["services_compared"]["endpointslice-controller"] == SERVICES
            && r["services_compared"]["endpoints-controller"] == SERVICES
            && r["pending"] == 0
            && r["divergences"].as_array().is_some_and(Vec::is_empty)
    })
}

async fn shadow() -> Figures {
    let (server, _listener, kubeconfig) = setup().await;
    let stop = CancellationToken::new();
    let writer = Arc::new(ControllerSet::new(
        &server,
        &ControllerName::ALL.into_iter().collect::<BTreeSet<_>>(),
        &ControllerOptions::default(),
        "writer",
        &stop,
    ));
    let running = tokio::spawn({
        let (writer, stop) = (Arc::clone(&writer), stop.clone());
        async move { writer.run(stop).await }
    });
    until("the writer converges", || ready_counts(&server) == ALL_READY).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = spawn(
        &[
            "shadow",
            "--grace-period",
            "1s",
            "--metrics-bind-address",
            &addr,
            // The report is read over plain HTTP.
            "--metrics-secure=false",
        ],
        &kubeconfig,
    );
    let pid = child.id();
    until("the shadow settles", || settled(shadow_report(&addr))).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (start_cpu, _, _) = usage(pid);
    churn(&server).await;
    until("the writer follows the churn", || ready_counts(&server) == ALL_READY).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    until("the shadow settles again", || settled(shadow_report(&addr))).await;
    let (cpu, rss, peak) = usage(pid);
    let report = shadow_report(&addr).unwrap();
    assert!(report["divergences"].as_array().unwrap().is_empty(), "{report}");
    child.kill().unwrap();
    child.wait().unwrap();
    stop.cancel();
    running.await.unwrap();
    Figures {
        start_cpu,
        churn_cpu: cpu - start_cpu,
        rss,
        peak,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
async fn shadow_mode_footprint_beside_normal_operation() {
    let normal = normal().await;
    let shadow = shadow().await;
    println!(
        "| mode | CPU to converge / first full comparison | CPU for the churn ({} flips) | RSS after | peak RSS |",
        SERVICES * FLIPS * ROUNDS
    );
    println!("|---|---|---|---|---|");
    for (name, f) in [("`ecm run` (writes)", &normal), ("`ecm shadow` (compares)", &shadow)] {
        println!(
            "| {name} | {:.2} s | {:.2} s | {:.1} MiB | {:.1} MiB |",
            f.start_cpu,
            f.churn_cpu,
            f.rss as f64 / 1024.0,
            f.peak as f64 / 1024.0
        );
    }
}
