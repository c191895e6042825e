//! ecm at scale, measured as a user would run it: `ecm run` (the release
//! binary) as a separate process, all three controllers, client limits and
//! leader election off, over HTTP against ecm-apiserver served on
//! 127.0.0.1 by this process — or against any cluster (`--kubeconfig`).
//!
//! Workload: `--services` Services of `--pods-per-service` ready pods each
//! (selector `app=<service>,tier=<t>`), over `--namespaces` namespaces, on
//! `--nodes` nodes in three zones. Phases, each printed and written as one
//! JSON object appended to `--results` (default
//! `<target>/bench-scale/results.jsonl`):
//!
//! 1. load: every object created with ecm not running (64 requests in flight);
//! 2. cold start: ecm started; time until every Service's Endpoints and
//!    EndpointSlices show all its pods ready; ecm's CPU time and writes
//!    (watch events on Endpoints and EndpointSlices) until then, and until
//!    writes stop;
//! 3. idle: ecm's CPU over `--idle-secs` with nothing changing;
//! 4. churn: `--churn-rate` random pods per second flip readiness for
//!    `--churn-secs`; per change, the time from its status write returning
//!    until a watcher sees the EndpointSlice (and the Endpoints) with the
//!    pod's new readiness; ecm's CPU from the first change until every
//!    change was seen, divided by the changes;
//! 5. restart: SIGTERM, start again on the converged cluster; writes (0
//!    expected), time until `/readyz` and until no write for `--quiet-secs`;
//! 6. memory: ecm's peak (`VmHWM`) and current (`VmRSS`) resident set.
//!
//! `cargo bench -p ecm --bench scale -- --services 3000`; `cargo xtask bench
//! scale` runs the sizes of docs/benchmarks.md and plots them. Asserts
//! nothing about time.

// A benchmark binary: printing is its job, and a failure should stop it.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

mod args;
mod child;
mod churn;
mod observe;
mod stats;
mod workload;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use ecm_apiserver::ApiServer;
use serde_json::json;
use tokio::time::Instant;

use args::Args;
use child::Ecm;
use observe::Observer;
use workload::Workload;

/// Where ecm's log and the in-process server's kubeconfig go.
fn work_dir(args: &Args) -> PathBuf {
    let dir = args
        .results()
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits until `done(state)` or `timeout`; whether it happened.
async fn wait_for(observer: &Observer, timeout: Duration, done: impl Fn(&observe::State) -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if observer.with(|s| done(s)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until no write was seen for `quiet` after `since`; the instant of
/// the last write (or `since`).
async fn wait_quiet(observer: &Observer, since: Instant, quiet: Duration, timeout: Duration) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        let last = observer.with(|s| s.last_write).map_or(since, |w| w.max(since));
        if last.elapsed() >= quiet || Instant::now() >= deadline {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn writes_json(observer: &Observer, before: (observe::Writes, observe::Writes)) -> serde_json::Value {
    let (endpoints, slices) = observer.with(|s| (s.endpoints, s.slices));
    let diff = |a: observe::Writes, b: observe::Writes| observe::Writes {
        creates: a.creates - b.creates,
        updates: a.updates - b.updates,
        deletes: a.deletes - b.deletes,
    };
    let (e, s) = (diff(endpoints, before.0), diff(slices, before.1));
    json!({"total": e.total() + s.total(), "endpoints": e, "endpointslices": s})
}

/// A figure with `digits` decimals, or "-" when not measured (ecm elsewhere).
fn shown(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

fn counts(observer: &Observer) -> (observe::Writes, observe::Writes) {
    observer.with(|s| (s.endpoints, s.slices))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let label = args.label();
    let dir = work_dir(&args);
    let ticks = child::clock_ticks();
    let timeout = Duration::from_secs_f64(args.timeout_secs);
    let quiet = Duration::from_secs_f64(args.quiet_secs);

    // The cluster: ours in-process, or the one given.
    let (server, _serving, kubeconfig, prefix) = if let Some(path) = &args.kubeconfig {
        (None, None, path.clone(), format!("ecm-scale-{}", std::process::id()))
    } else {
        let config = ecm_apiserver::Config::default().history_size(args.pods() * 3 + 100_000);
        let server = ApiServer::new(config).unwrap();
        let serving = server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let path = dir.join("scale.kubeconfig");
        serving.write_kubeconfig(&path).unwrap();
        (Some(server), Some(serving), path, "scale".to_owned())
    };
    let kube_config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(kube_config).unwrap();
    let workload = Workload {
        prefix,
        namespaces: args.namespaces,
        services: args.services,
        pods_per_service: args.pods_per_service,
        nodes: args.nodes,
    };
    let namespaces: Vec<String> = (0..workload.namespaces).map(|i| workload.namespace(i)).collect();
    println!(
        "scale {label}: {} Services x {} pods = {} pods in {} namespace(s), {} nodes{}",
        args.services,
        args.pods_per_service,
        args.pods(),
        args.namespaces,
        args.nodes,
        args.kubeconfig
            .as_ref()
            .map_or(String::new(), |k| format!(", cluster {}", k.display())),
    );

    // 1. Load, ecm not running (unless it runs elsewhere).
    workload.create_namespaces(&client).await;
    let observer = Observer::start(&client, &namespaces, args.pods_per_service).await;
    let started = Instant::now();
    let requests = workload.load(&client, args.parallel).await;
    let load_secs = started.elapsed().as_secs_f64();
    println!(
        "load: {requests} requests in {load_secs:.1} s ({:.0}/s)",
        requests as f64 / load_secs
    );

    // 2. Cold start.
    let binary = child::binary(args.ecm.as_ref());
    let log = dir.join("ecm.log");
    let mut ecm = (!args.ecm_elsewhere).then(|| Ecm::spawn(&binary, &kubeconfig, &log));
    let start = Instant::now();
    let services = args.services;
    let converged = wait_for(&observer, timeout, |s| s.converged >= services).await;
    let converge_secs = start.elapsed().as_secs_f64();
    let cpu = |ecm: &Option<Ecm>| ecm.as_ref().map(|e| e.cpu_secs(ticks));
    let start_cpu = cpu(&ecm);
    let start_writes = writes_json(&observer, Default::default());
    let last = wait_quiet(&observer, start, quiet, timeout).await;
    let start_all_writes = writes_json(&observer, Default::default());
    let start_cpu_all = cpu(&ecm);
    let memory_converged = ecm.as_ref().map(Ecm::memory);
    println!(
        "cold start: converged={converged} in {converge_secs:.2} s, ecm CPU {} s, writes {} (until quiet: {} in {:.2} s)",
        shown(start_cpu, 2),
        start_writes["total"],
        start_all_writes["total"],
        last.duration_since(start).as_secs_f64(),
    );
    if !converged {
        let (c, total) = observer.with(|s| (s.converged, s.total_writes()));
        println!("not converged: {c} of {services} Services after {converge_secs:.0} s ({total} writes)");
    }

    // 3. Idle.
    let idle_secs = args.idle_secs();
    let (cpu_before, writes_before) = (cpu(&ecm), counts(&observer));
    tokio::time::sleep(Duration::from_secs_f64(idle_secs)).await;
    let idle_cpu = cpu(&ecm).zip(cpu_before).map(|(a, b)| a - b);
    let idle_writes = writes_json(&observer, writes_before);
    println!(
        "idle {idle_secs:.0} s: ecm CPU {} s, writes {}",
        shown(idle_cpu, 3),
        idle_writes["total"]
    );

    // 4. Churn.
    let mut ready = vec![true; workload.pods()];
    let (cpu_before, writes_before) = (cpu(&ecm), counts(&observer));
    let churn_start = Instant::now();
    let changes = churn::churn(
        &client,
        &workload,
        &observer,
        &mut ready,
        args.churn_rate,
        args.churn_secs(),
        args.seed,
    )
    .await;
    let churn_writes_done = churn_start.elapsed().as_secs_f64();
    let drained = wait_for(&observer, Duration::from_secs(120), |s| s.pending() == (0, 0)).await;
    let churn_secs = churn_start.elapsed().as_secs_f64();
    let churn_cpu = cpu(&ecm).zip(cpu_before).map(|(a, b)| a - b);
    let churn_writes = writes_json(&observer, writes_before);
    let (endpoints_latency, slices_latency, pending) = observer.with(|s| {
        (
            stats::summary(&s.endpoints_latency),
            stats::summary(&s.slices_latency),
            s.pending(),
        )
    });
    let cpu_per_change_ms = churn_cpu.map(|c| c * 1e3 / changes as f64);
    println!(
        "churn: {changes} changes at {}/s, writes done after {churn_writes_done:.1} s, all seen after {churn_secs:.1} s (drained={drained}, pending {pending:?})",
        args.churn_rate
    );
    println!("  EndpointSlice latency ms: {slices_latency}");
    println!("  Endpoints latency ms:     {endpoints_latency}");
    println!(
        "  ecm CPU {} s = {} ms per change; writes {}",
        shown(churn_cpu, 2),
        shown(cpu_per_change_ms, 2),
        churn_writes["total"]
    );
    let memory_churn = ecm.as_ref().map(Ecm::memory);

    // 5. Restart on the converged cluster.
    let restart = if let Some(running) = ecm.take() {
        running.stop().await;
        // Let the last writes' events arrive before counting.
        wait_quiet(&observer, Instant::now(), Duration::from_millis(500), timeout).await;
        let writes_before = counts(&observer);
        let mut again = Ecm::spawn(&binary, &kubeconfig, &log);
        let spawned = Instant::now();
        let ready_at = again.wait_ready(timeout).await;
        let last = wait_quiet(&observer, ready_at, quiet, timeout).await;
        let writes = writes_json(&observer, writes_before);
        let restart_cpu = again.cpu_secs(ticks);
        let memory = again.memory();
        println!(
            "restart: ready after {:.2} s, last write {:.2} s, writes {}, ecm CPU {restart_cpu:.2} s, RSS {} MB",
            ready_at.duration_since(spawned).as_secs_f64(),
            last.duration_since(spawned).as_secs_f64(),
            writes["total"],
            memory.rss / 1_000_000,
        );
        let result = json!({
            "ready_secs": ready_at.duration_since(spawned).as_secs_f64(),
            "idle_secs": last.duration_since(spawned).as_secs_f64(),
            "writes": writes,
            "cpu_secs": restart_cpu,
            "rss_bytes": memory.rss,
            "hwm_bytes": memory.hwm,
        });
        again.stop().await;
        Some(result)
    } else {
        None
    };

    // 6. Memory.
    if let (Some(c), Some(m)) = (memory_converged, memory_churn) {
        println!(
            "memory: RSS {} MB converged, {} MB after churn; peak {} MB; {:.0} bytes RSS per pod",
            c.rss / 1_000_000,
            m.rss / 1_000_000,
            m.hwm / 1_000_000,
            m.rss as f64 / args.pods() as f64
        );
    }

    let result = json!({
        "label": label,
        "cluster": if server.is_some() { "ecm-apiserver (in-process, HTTP on 127.0.0.1)".to_owned() } else { kubeconfig.display().to_string() },
        "ecm_spawned": !args.ecm_elsewhere,
        // Which build was measured (the plain release build, or the
        // profile-guided one of `cargo xtask pgo`).
        "ecm_binary": (!args.ecm_elsewhere).then(|| binary.display().to_string()),
        "services": args.services,
        "pods_per_service": args.pods_per_service,
        "pods": args.pods(),
        "namespaces": args.namespaces,
        "pods_per_namespace": args.pods().div_ceil(args.namespaces),
        "nodes": args.nodes,
        "load": {"requests": requests, "secs": load_secs},
        "cold_start": {
            "converged": converged,
            "converge_secs": converge_secs,
            "cpu_secs": start_cpu,
            "writes": start_writes,
            "quiet_after_secs": last.duration_since(start).as_secs_f64(),
            "writes_until_quiet": start_all_writes,
            "cpu_secs_until_quiet": start_cpu_all,
        },
        "idle": {"secs": idle_secs, "cpu_secs": idle_cpu, "writes": idle_writes},
        "churn": {
            "rate_per_sec": args.churn_rate,
            "changes": changes,
            "secs": churn_secs,
            "drained": drained,
            "cpu_secs": churn_cpu,
            "cpu_per_change_ms": cpu_per_change_ms,
            "writes": churn_writes,
            "endpointslice_latency": slices_latency,
            "endpoints_latency": endpoints_latency,
        },
        "restart": restart,
        "memory": {
            "rss_converged_bytes": memory_converged.map(|m| m.rss),
            "rss_after_churn_bytes": memory_churn.map(|m| m.rss),
            "peak_rss_bytes": memory_churn.map(|m| m.hwm),
        },
    });
    let path = args.results();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    writeln!(file, "{result}").unwrap();
    println!("result appended to {}", path.display());

    observer.stop();
    if server.is_none() {
        workload.delete(&client).await;
    }
}
