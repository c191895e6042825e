//! The `ecm shadow` command line: run beside another endpoint controller
//! and report where ecm would write something different; `--once` checks
//! everything once, prints the report and exits non-zero on divergence.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::runner::{Shadow, ShadowConfig, routes};
use super::state::Report;
use crate::client::{self, ClientOptions, ClientSource};
use crate::controller_set::{SHARED_INFORMERS, resync_period};
use crate::controllers::parse_controllers;
use crate::duration::parse_duration;
use crate::explain::{Output, limits};
use crate::health::{self, Health};
use crate::listen::Listen;
use crate::options::ControllerOptions;
use crate::runtime::RuntimeFlags;
use crate::secure::MetricsSecurityFlags;

/// `ecm shadow` arguments.
#[derive(Args, Debug)]
pub struct ShadowArgs {
    /// Kubeconfig file (default: KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Controllers whose output to compare ('*', 'name', '-name').
    #[arg(long, default_value = "*")]
    pub controllers: String,
    /// How long a difference must last after the last event concerning its
    /// Service (a change to the Service, its pods, slices or Endpoints)
    /// before it counts: the other controller lags.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub grace_period: Duration,
    /// Check every Service once, wait out the grace period, print the
    /// report and exit: 0 when nothing diverges, 1 when something does.
    #[arg(long)]
    pub once: bool,
    /// How long `--once` may take before giving up.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub once_timeout: Duration,
    /// Output format of `--once`: table, json or yaml.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// The controllers' flags, as for `ecm run` (the slice and subset sizes
    /// shape the desired objects).
    #[command(flatten)]
    pub options: ControllerOptions,
    /// Client-side request rate limit towards the API server.
    #[arg(long, default_value_t = 20.0)]
    pub kube_api_qps: f32,
    /// Client-side burst towards the API server.
    #[arg(long, default_value_t = 30)]
    pub kube_api_burst: u32,
    /// Every Service is checked again after this long times a random factor
    /// in [1, 2) (0 disables).
    #[arg(long, default_value = "12h", value_parser = parse_duration)]
    pub min_resync_period: Duration,
    /// Address serving /healthz and /readyz ("0" disables).
    #[arg(long, default_value = "0.0.0.0:8081")]
    pub health_probe_bind_address: String,
    /// Address serving /metrics and /shadow ("0" disables).
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_bind_address: String,
    /// HTTPS and delegated authorization of /metrics and /shadow, as for
    /// `ecm run` (on by default).
    #[command(flatten)]
    pub metrics_security: MetricsSecurityFlags,
    /// `--worker-threads`, as for `ecm run`.
    #[command(flatten)]
    pub runtime: RuntimeFlags,
}

fn listen(flag: &'static str, value: &str) -> Result<Option<Listen>> {
    if value == "0" {
        return Ok(None);
    }
    let addr = value
        .parse()
        .with_context(|| format!("--{flag}: {value:?} is not an address such as 0.0.0.0:8080"))?;
    Ok(Some(Listen::new(addr, flag, true, false)))
}

/// The report as text.
pub fn render(report: &Report, output: Output) -> Result<String> {
    Ok(match output {
        Output::Json => serde_json::to_string_pretty(report)? + "\n",
        Output::Yaml => serde_saphyr::to_string(report).context("cannot render YAML")?,
        Output::Table => {
            let mut out = String::new();
            for (controller, n) in &report.services_compared {
                let divergent = report.divergent_services.get(controller).copied().unwrap_or(0);
                let _ = writeln!(out, "{controller}: {n} compared, {divergent} divergent");
            }
            if report.divergences.is_empty() {
                let _ = writeln!(out, "No divergences.");
            }
            for d in &report.divergences {
                let _ = writeln!(
                    out,
                    "\n{} {}\n  {}: {}: ecm wants {}, found {}\n  why: {}",
                    d.controller, d.service, d.subject, d.field, d.desired, d.actual, d.reason
                );
            }
            out
        }
    })
}

/// Runs `ecm shadow` until interrupted, or once with `--once`; returns the
/// text to print and whether anything diverged.
pub fn run(args: &ShadowArgs) -> Result<(String, bool)> {
    args.runtime.build()?.block_on(run_async(args))
}

async fn run_async(args: &ShadowArgs) -> Result<(String, bool)> {
    let controllers = parse_controllers(&args.controllers)?;
    let shutdown = CancellationToken::new();
    crate::signals::stop_on_signals(shutdown.clone());
    let options = ClientOptions {
        kubeconfig: args.kubeconfig.clone(),
        qps: args.kube_api_qps,
        burst: args.kube_api_burst,
    };
    let config = client::load_config(&options).await?;
    let clients = client::ClusterClients::new(&config, options.qps, options.burst, [SHARED_INFORMERS])?;
    client::check_reachable(&clients.client(SHARED_INFORMERS), Duration::from_secs(10)).await?;
    let shadow = Arc::new(Shadow::new(
        &clients,
        ShadowConfig {
            controllers,
            limits: limits(&args.options),
            grace_period: args.grace_period,
            workers: usize::try_from(args.options.concurrent_service_endpoint_syncs).unwrap_or(5),
        },
        &shutdown,
        resync_period(args.min_resync_period),
    ));
    let running = tokio::spawn({
        let (shadow, shutdown) = (Arc::clone(&shadow), shutdown.clone());
        async move { shadow.run(shutdown).await }
    });
    if args.once {
        let deadline = tokio::time::Instant::now() + args.once_timeout;
        while !(shadow.has_synced() && shadow.is_idle()) {
            if tokio::time::Instant::now() >= deadline || shutdown.is_cancelled() {
                shutdown.cancel();
                bail!(
                    "the checks did not finish within --once-timeout {:?}",
                    args.once_timeout
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        shutdown.cancel();
        let _ = running.await;
        let report = shadow.state().report();
        let diverged = !report.divergences.is_empty();
        return Ok((render(&report, args.output)?, diverged));
    }
    let handle = health::install_metrics()?;
    let health = Health::new();
    let metrics = listen("metrics-bind-address", &args.metrics_bind_address)?;
    let secure =
        args.metrics_security
            .secure_metrics(false, &clients.client(SHARED_INFORMERS), metrics.map(|l| l.addr.ip()))?;
    let served = health::serve_with_routes(
        health.clone(),
        Some(handle),
        routes(Arc::clone(shadow.state())),
        listen("health-probe-bind-address", &args.health_probe_bind_address)?,
        metrics,
        secure,
        shutdown.clone(),
    )
    .await?;
    tracing::info!(addresses = ?served.addresses(), grace_period = ?args.grace_period, "shadow mode: comparing, never writing");
    let ready = tokio::spawn({
        let (shadow, health, stop) = (Arc::clone(&shadow), health.clone(), shutdown.clone());
        async move {
            while !shadow.has_synced() && !stop.is_cancelled() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            health.set_ready(shadow.has_synced());
        }
    });
    let _ = running.await;
    ready.abort();
    Ok((String::new(), false))
}
