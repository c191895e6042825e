//! `ecm simulate`: run a conformance scenario on the in-memory API server
//! with a virtual clock, and print what the cluster holds once the
//! controllers have gone quiet (`../shared/conformance/FORMAT.md`).
//!
//! The run uses tokio's paused clock, which jumps ahead whenever every task
//! is idle: batch periods, delayed re-queues and retry back-off elapse at
//! once. The run is over when, all at the same time, every controller has
//! started and has nothing queued, delayed or in progress, the API server
//! serves no request, and every informer has applied the latest event of
//! its resource — checked each time a queue or an informer changes, never
//! by waiting a fixed time.
//!
//! A run that does not go quiet within [`VIRTUAL_TIME_LIMIT`] fails.
//! FORMAT.md names one virtual hour, but upstream's EndpointSlice controller
//! retries a failing key 15 times with back-off from 1 s doubling to 1000 s,
//! 6023 s in all, and the format also requires such a key to stop after its
//! last retry; the limit therefore leaves room for that chain.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ecm_apiserver::ApiServer;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::controller_set::ControllerSet;
use crate::scenario::Scenario;

/// How long a run may take on the virtual clock.
pub const VIRTUAL_TIME_LIMIT: Duration = Duration::from_secs(2 * 3600);

/// Runs the scenario file at `path` and returns the JSON result.
pub fn run_file(path: &Path) -> Result<Value> {
    run_blocking(Scenario::load(path)?)
}

/// Runs `scenario` on a paused-clock runtime of its own.
pub fn run_blocking(scenario: Scenario) -> Result<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .context("cannot start the simulation runtime")?;
    runtime.block_on(run(scenario))
}

/// Runs a scenario on the current (paused-clock) runtime.
pub async fn run(scenario: Scenario) -> Result<Value> {
    // No garbage collector: the scenarios describe the endpoint controllers
    // alone, and a scenario's objects may name owners that do not exist
    // (kube-controller-manager's garbage collector is another controller).
    let config = ecm_apiserver::Config::default().seed(0).garbage_collection(false);
    let server = ApiServer::new(config).context("cannot start the API server")?;
    load(&server, &scenario)?;

    let shutdown = CancellationToken::new();
    let runtime = Arc::new(ControllerSet::new(
        &server,
        &scenario.controllers,
        &scenario.options,
        "simulate",
        &shutdown,
    ));
    let running = tokio::spawn({
        let (runtime, shutdown) = (Arc::clone(&runtime), shutdown.clone());
        async move { runtime.run(shutdown).await }
    });

    let started = Instant::now();
    let outcome = wait_until_quiet(&runtime, &server, started + VIRTUAL_TIME_LIMIT).await;
    shutdown.cancel();
    running.await.context("the controllers failed")?;
    outcome.with_context(|| format!("scenario {}", scenario.name))?;
    tracing::info!(scenario = %scenario.name, virtual_time = ?started.elapsed(), "simulation went quiet");
    Ok(result(&server))
}

/// Loads the scenario's objects exactly as given, creating their namespaces.
pub fn load(server: &ApiServer, scenario: &Scenario) -> Result<()> {
    let given: BTreeSet<String> = scenario
        .objects
        .iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("Namespace"))
        .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    for namespace in scenario.namespaces().difference(&given) {
        if server.get_object("namespaces", None, namespace).is_none() {
            server
                .insert_object(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}))
                .with_context(|| format!("cannot create namespace {namespace}"))?;
        }
    }
    for object in &scenario.objects {
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        server
            .insert_object(object.clone())
            .with_context(|| format!("cannot load {kind} {name}"))?;
    }
    Ok(())
}

/// Whether nothing can happen any more: the controllers are idle, the
/// server serves no request and every informer has applied the latest event
/// of its resource.
pub fn is_quiet(runtime: &ControllerSet, server: &ApiServer) -> bool {
    runtime.has_synced()
        && runtime.is_idle()
        && server.in_flight_requests() == 0
        && runtime.watched().iter().all(|watched| {
            let applied = watched
                .progress
                .borrow()
                .resource_version
                .as_deref()
                .and_then(|rv| rv.parse::<u64>().ok());
            let latest = server.latest_event_resource_version(watched.resource).unwrap_or(0);
            applied.is_some_and(|applied| applied >= latest)
        })
}

/// Waits until [`is_quiet`] holds, looking again whenever a queue or an
/// informer changes; fails at `deadline`.
pub async fn wait_until_quiet(runtime: &ControllerSet, server: &ApiServer, deadline: Instant) -> Result<()> {
    let mut progress: Vec<_> = runtime.watched().iter().map(|w| w.progress.clone()).collect();
    let started = Instant::now();
    loop {
        if is_quiet(runtime, server) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "did not go quiet within {} s (controllers idle: {}, informers synced: {}, requests in flight: {})",
                deadline.saturating_duration_since(started).as_secs(),
                runtime.is_idle(),
                runtime.has_synced(),
                server.in_flight_requests()
            );
        }
        let informer_changed = futures::future::select_all(progress.iter_mut().map(|p| Box::pin(p.changed())));
        tokio::select! {
            () = runtime.queue_changed() => {}
            _ = informer_changed => {}
            // In-flight requests and server events change without a signal
            // of their own; look again shortly (virtual time).
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
}

/// The result document: every Endpoints and EndpointSlice, the controllers'
/// writes and the events they recorded.
fn result(server: &ApiServer) -> Value {
    let writes: Vec<Value> = server
        .write_log()
        .into_iter()
        .map(|w| {
            json!({
                "verb": w.verb.as_str(),
                "resource": w.resource,
                "namespace": w.namespace.unwrap_or_default(),
                "name": w.name.unwrap_or_default(),
            })
        })
        .collect();
    let events: Vec<Value> = server
        .list_objects("events")
        .into_iter()
        .filter(|e| e.get("apiVersion").and_then(Value::as_str) == Some("v1"))
        .map(|e| {
            let field = |path: &str| e.pointer(path).and_then(Value::as_str).unwrap_or_default().to_owned();
            let namespace = field("/involvedObject/namespace");
            let name = field("/involvedObject/name");
            let involved = if namespace.is_empty() {
                name
            } else {
                format!("{namespace}/{name}")
            };
            json!({
                "type": field("/type"),
                "reason": field("/reason"),
                "involvedObject": involved,
                "message": field("/message"),
            })
        })
        .collect();
    json!({
        "endpoints": server.list_objects("endpoints"),
        "endpointSlices": server.list_objects("endpointslices"),
        "writes": writes,
        "events": events,
    })
}
