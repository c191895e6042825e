//! `/healthz`, `/readyz` and `/metrics`. The probes are plain HTTP (for
//! the kubelet); `/metrics` is plain too, or HTTPS with delegated
//! authentication and authorization (see [`crate::secure`]).
//!
//! - `/healthz` (liveness): the process serves requests and, when it leads,
//!   its controllers are running.
//! - `/readyz` (readiness): the controllers' informers have synced; a standby
//!   replica waiting for leadership is ready too, so rollouts do not stall.
//! - `/metrics`: Prometheus text, with real histograms for the work-queue
//!   and EndpointSlice metrics (upstream's buckets).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

use crate::listen::{Bound, Listen};
use crate::secure::{SecureMetrics, delegated, tls};

/// Upstream's work-queue histogram buckets: 1 µs to 1000 s, ×10.
const WORKQUEUE_BUCKETS: [f64; 10] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0];

/// Shared health state the controllers and leader election update.
#[derive(Clone, Default)]
pub struct Health {
    ready: Arc<AtomicBool>,
    healthy: Arc<AtomicBool>,
}

impl Health {
    /// Healthy, not ready.
    pub fn new() -> Self {
        let health = Self::default();
        health.healthy.store(true, Ordering::SeqCst);
        health
    }

    /// Marks readiness.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Marks liveness.
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }
}

/// Installs the global Prometheus recorder and returns its handle.
pub fn install_metrics() -> Result<PrometheusHandle> {
    let mut builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Prefix("workqueue_".into()), &WORKQUEUE_BUCKETS)?
        .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), &WORKQUEUE_BUCKETS)?;
    let histograms = ecm_endpointslice::metrics::HISTOGRAM_BUCKETS
        .into_iter()
        .chain(ecm_mirroring::metrics::HISTOGRAM_BUCKETS);
    for (name, buckets) in histograms {
        builder = builder.set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)?;
    }
    let handle = builder
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    ecm_workqueue::metrics::describe_metrics();
    Ok(handle)
}

#[derive(Clone)]
struct AppState {
    health: Health,
    metrics: Option<PrometheusHandle>,
}

async fn healthz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.health.healthy.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy")
    }
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.health.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "informers not synced")
    }
}

async fn metrics(State(state): State<AppState>) -> (StatusCode, String) {
    match &state.metrics {
        Some(handle) => (StatusCode::OK, handle.render()),
        None => (StatusCode::NOT_FOUND, String::new()),
    }
}

/// The routes: probes, metrics, or both.
fn router(state: AppState, probes: bool, with_metrics: bool) -> Router {
    let mut router = Router::new();
    if probes {
        router = router.route("/healthz", get(healthz)).route("/readyz", get(readyz));
    }
    if with_metrics {
        router = router.route("/metrics", get(metrics));
    }
    router.with_state(state)
}

/// Where [`serve`] listens: the probes' and the metrics' addresses, each
/// `None` when disabled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Served {
    /// `/healthz` and `/readyz`.
    pub probes: Option<Bound>,
    /// `/metrics`.
    pub metrics: Option<Bound>,
    /// Whether `/metrics` is HTTPS with authentication and authorization.
    pub metrics_secure: bool,
}

impl Served {
    /// The bound addresses, probes first.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.probes.iter().chain(&self.metrics).map(|b| b.addr).collect()
    }

    /// The URL of `/metrics`, `https://` when secure.
    pub fn metrics_url(&self) -> Option<String> {
        let scheme = if self.metrics_secure { "https" } else { "http" };
        self.metrics.map(|m| format!("{scheme}://{}/metrics", m.addr))
    }
}

/// Serves the probes on `probes` and metrics on `metrics` (one listener
/// when they are equal; `None` disables one), all plain HTTP, until
/// `shutdown`. A taken default address falls back to a free port as
/// [`Listen::bind`] says. Returns where each listens.
pub async fn serve(
    health: Health,
    metrics_handle: Option<PrometheusHandle>,
    probes: Option<Listen>,
    metrics: Option<Listen>,
    shutdown: CancellationToken,
) -> Result<Served> {
    serve_with_routes(health, metrics_handle, Router::new(), probes, metrics, None, shutdown).await
}

/// [`serve`], with `extra` routes (such as shadow mode's `/shadow`) served
/// beside `/metrics`, and with `secure`, `/metrics` and the extra routes
/// served over HTTPS to authenticated and authorized clients only (on
/// their own address: the probes stay plain HTTP).
pub async fn serve_with_routes(
    health: Health,
    metrics_handle: Option<PrometheusHandle>,
    extra: Router,
    probes: Option<Listen>,
    metrics: Option<Listen>,
    secure: Option<SecureMetrics>,
    shutdown: CancellationToken,
) -> Result<Served> {
    if let (Some(p), Some(m), Some(_)) = (&probes, &metrics, &secure)
        && p.addr == m.addr
    {
        bail!(
            "--{} and --{} are both {}: secure metrics are served over HTTPS and the health probes over \
             plain HTTP (for the kubelet), so they need different ports (or pass --metrics-secure=false)",
            p.flag,
            m.flag,
            p.addr
        );
    }
    if let Some(handle) = metrics_handle.clone() {
        let token = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = tick.tick() => handle.run_upkeep(),
                    () = token.cancelled() => break,
                }
            }
        });
    }
    let state = AppState {
        health,
        metrics: metrics_handle,
    };
    let mut served = Served::default();
    let mut plan = Vec::new();
    match (probes, metrics) {
        (Some(p), Some(m)) if p.addr == m.addr => {
            let (listener, bound) = p.bind("health probes and metrics").await?;
            served = Served {
                probes: Some(bound),
                metrics: Some(bound),
                metrics_secure: false,
            };
            plan.push((listener, router(state.clone(), true, true).merge(extra.clone())));
        }
        (p, m) => {
            if let Some(p) = p {
                let (listener, bound) = p.bind("health probes").await?;
                served.probes = Some(bound);
                plan.push((listener, router(state.clone(), true, false)));
            }
            if let Some(m) = m {
                let (listener, bound) = m.bind("metrics").await?;
                served.metrics = Some(bound);
                let app = router(state.clone(), false, true).merge(extra.clone());
                if let Some(secure) = secure {
                    served.metrics_secure = true;
                    let app = app.layer(axum::middleware::from_fn_with_state(
                        secure.auth.clone(),
                        delegated::require,
                    ));
                    tokio::spawn(tls::serve(listener, app, secure.tls, shutdown.clone()));
                } else {
                    plan.push((listener, app));
                }
            }
        }
    }
    for (listener, app) in plan {
        let token = shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
            if let Err(err) = served {
                tracing::error!(error = %err, "health/metrics server failed");
            }
        });
    }
    Ok(served)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get_status(addr: SocketAddr, path: &str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn probes_follow_the_health_state() {
        let health = Health::new();
        let token = CancellationToken::new();
        let local = Listen::new("127.0.0.1:0".parse().unwrap(), "health-probe-bind-address", true, false);
        let addrs = serve(health.clone(), None, Some(local), None, token.clone())
            .await
            .unwrap()
            .addresses();
        assert_eq!(get_status(addrs[0], "/healthz").await, 200);
        assert_eq!(get_status(addrs[0], "/readyz").await, 503);
        health.set_ready(true);
        assert_eq!(get_status(addrs[0], "/readyz").await, 200);
        health.set_healthy(false);
        assert_eq!(get_status(addrs[0], "/healthz").await, 503);
        assert_eq!(get_status(addrs[0], "/metrics").await, 404);
        token.cancel();
    }

    #[tokio::test]
    async fn secure_metrics_refuse_to_share_the_probes_plain_address() {
        let server = ecm_apiserver::ApiServer::new(ecm_apiserver::Config::default()).unwrap();
        let secure = crate::secure::MetricsSecurityFlags::default()
            .secure_metrics(false, &server.client(), None)
            .unwrap();
        let addr = "127.0.0.1:0".parse().unwrap();
        let probes = Listen::new(addr, "health-probe-bind-address", true, false);
        let metrics = Listen::new(addr, "metrics-bind-address", true, false);
        let token = CancellationToken::new();
        let err = serve_with_routes(
            Health::new(),
            None,
            Router::new(),
            Some(probes),
            Some(metrics),
            secure,
            token.clone(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("--metrics-secure=false"), "{err}");
        assert!(err.contains("--health-probe-bind-address"), "{err}");
    }

    #[test]
    fn exported_histograms_use_upstream_buckets() {
        // nextest runs each test in its own process, so the global
        // recorder is free here.
        let handle = install_metrics().unwrap();
        metrics::histogram!(ecm_endpointslice::metrics::ENDPOINTS_ADDED_PER_SYNC).record(3.0);
        metrics::histogram!(
            ecm_endpointslice::metrics::ENDPOINTSLICES_CHANGED_PER_SYNC,
            "topology" => "Disabled",
            "traffic_distribution" => ""
        )
        .record(1.0);
        metrics::histogram!("workqueue_queue_duration_seconds", "name" => "endpoint").record(0.01);
        let text = handle.render();
        assert!(
            text.contains("endpoint_slice_controller_endpoints_added_per_sync_bucket{le=\"32768\"} 1"),
            "{text}"
        );
        assert!(text.contains("endpoint_slice_controller_endpointslices_changed_per_sync_bucket{topology=\"Disabled\",traffic_distribution=\"\",le=\"0.005\"} 0"), "{text}");
        assert!(
            text.contains("workqueue_queue_duration_seconds_bucket{name=\"endpoint\",le=\"0.000001\"} 0"),
            "{text}"
        );
    }
}
