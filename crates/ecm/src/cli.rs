//! The command line: `run`, `simulate`, `version`.

// A command-line program: printing is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::client::ClientSource;
use crate::controller_set::{ControllerSet, SHARED_INFORMERS};
use crate::controllers::ControllerName;
use crate::controllers::parse_controllers;
use crate::duration::parse_duration;
use crate::health::Health;
use crate::logging::LogFormat;
use crate::options::ControllerOptions;
use crate::{client, controller_set, embedded, health, leader, logging, simulate};

/// The `ecm` command line.
#[derive(Parser)]
#[command(
    name = "ecm",
    version,
    about = "Kubernetes endpoint controllers (Endpoints, EndpointSlice, mirroring) in Rust"
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log verbosity, as kube-controller-manager's -v (RUST_LOG overrides it).
    #[arg(short = 'v', long = "v", global = true, default_value_t = 0)]
    verbosity: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers.
    Run(Box<RunArgs>),
    /// Run a conformance scenario on a virtual clock and print the result as JSON.
    Simulate {
        /// The scenario (or plain manifest) file.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
    /// Print the version.
    Version,
}

#[derive(Args)]
struct RunArgs {
    /// Kubeconfig file (default: KUBECONFIG, which may list several files,
    /// then ~/.kube/config, then in-cluster; an empty KUBECONFIG counts as
    /// unset, as for kubectl).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,

    /// Run against an embedded in-memory API server on 127.0.0.1 instead of a cluster.
    #[arg(long)]
    embedded: bool,

    /// Address of the embedded API server.
    #[arg(long, default_value = "127.0.0.1:6443", requires = "embedded")]
    embedded_listen: SocketAddr,

    /// Where to write the embedded API server's kubeconfig.
    #[arg(long, default_value = "ecm-embedded.kubeconfig", requires = "embedded")]
    embedded_kubeconfig: PathBuf,

    /// How long the embedded pod simulator takes to make a pod Ready.
    #[arg(long, default_value = "2s", value_parser = parse_duration, requires = "embedded")]
    embedded_pod_ready_delay: Duration,

    /// Controllers to run: '*' for all, 'name' to enable, '-name' to disable.
    #[arg(long, default_value = "*")]
    controllers: String,

    #[command(flatten)]
    options: ControllerOptions,

    /// Client-side request rate limit towards the API server (queries per second).
    #[arg(long, default_value_t = 20.0)]
    kube_api_qps: f32,

    /// Client-side burst towards the API server.
    #[arg(long, default_value_t = 30)]
    kube_api_burst: u32,

    /// Elect a leader among replicas; only the leader runs the controllers.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,

    /// Lease duration.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    leader_elect_lease_duration: Duration,

    /// How long the leader keeps trying to renew before giving up.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    leader_elect_renew_deadline: Duration,

    /// Accepted for kube-controller-manager compatibility; the lease library paces its own retries.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    leader_elect_retry_period: Duration,

    /// Name of the Lease.
    #[arg(long, default_value = "ecm")]
    leader_elect_resource_name: String,

    /// Namespace of the Lease (default: POD_NAMESPACE when set and not
    /// empty, else kube-system).
    #[arg(long)]
    leader_elect_resource_namespace: Option<String>,

    /// Informers resync every cached object after this long times a random
    /// factor in [1, 2): every Service is synced again, writing only what
    /// drifted (0 disables).
    #[arg(long, default_value = "12h", value_parser = parse_duration)]
    min_resync_period: Duration,

    /// How long to wait at start-up for the API server to answer before giving up.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    startup_timeout: Duration,

    /// Address serving /healthz and /readyz ("0" disables).
    #[arg(long, default_value = "0.0.0.0:8081")]
    health_probe_bind_address: String,

    /// Address serving /metrics ("0" disables).
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_bind_address: String,
}

fn address(flag: &str, value: &str) -> Result<Option<SocketAddr>> {
    if value == "0" {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .with_context(|| format!("--{flag}: {value:?} is not an address such as 0.0.0.0:8080"))
}

/// The leader-election Lease's namespace: the flag, else a non-empty
/// `POD_NAMESPACE` (the chart sets it from the downward API), else
/// `kube-system`.
fn lease_namespace(flag: Option<&str>, pod_namespace: Option<&str>) -> String {
    flag.or(pod_namespace)
        .filter(|ns| !ns.is_empty())
        .unwrap_or("kube-system")
        .to_owned()
}

/// The command line's clap description: every subcommand and flag with its
/// default. For documentation, shell completions and the Helm chart's checks
/// (`crates/ecm/tests/chart.rs`).
pub fn command() -> clap::Command {
    Cli::command()
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format, cli.verbosity);
    let outcome = match cli.command {
        Command::Version => {
            println!(
                "ecm {} (Kubernetes v1.36 endpoint controllers)",
                env!("CARGO_PKG_VERSION")
            );
            Ok(())
        }
        Command::Simulate { file } => simulate::run_file(&file).and_then(|result| {
            println!("{}", serde_json::to_string(&result)?);
            Ok(())
        }),
        Command::Run(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime")
            .and_then(|rt| rt.block_on(run(*args))),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ecm: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Cancels `token` on SIGTERM or SIGINT.
fn stop_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("interrupted, shutting down"),
            () = term => tracing::info!("terminated, shutting down"),
        }
        token.cancel();
    });
}

async fn run(args: RunArgs) -> Result<()> {
    let enabled = parse_controllers(&args.controllers)?;
    let probe_addr = address("health-probe-bind-address", &args.health_probe_bind_address)?;
    let metrics_addr = address("metrics-bind-address", &args.metrics_bind_address)?;
    let shutdown = CancellationToken::new();
    stop_on_signals(shutdown.clone());

    let metrics = health::install_metrics()?;
    let health = Health::new();
    let bound = health::serve(
        health.clone(),
        Some(metrics),
        probe_addr,
        metrics_addr,
        shutdown.clone(),
    )
    .await?;
    tracing::info!(addresses = ?bound, "serving health probes and metrics");

    let mut embedded = None;
    // The process's own client (start-up check, leader election) and the
    // per-component clients the controllers and informers use.
    let (client, clients): (kube::Client, Arc<dyn ClientSource + Send + Sync>) = if args.embedded {
        let started = embedded::start(
            args.embedded_listen,
            args.embedded_kubeconfig.clone(),
            args.embedded_pod_ready_delay,
        )
        .await?;
        println!("{}", embedded::instructions(&started));
        let client = started.server.client_with_user_agent(&client::user_agent());
        let clients = Arc::new(started.server.clone());
        embedded = Some(started);
        (client, clients)
    } else {
        let options = client::ClientOptions {
            kubeconfig: args.kubeconfig.clone(),
            qps: args.kube_api_qps,
            burst: args.kube_api_burst,
        };
        let client = client::build(&options).await?;
        client::check_reachable(&client, args.startup_timeout).await?;
        let config = client::load_config(&options).await?;
        let components = ControllerName::ALL
            .map(ControllerName::canonical)
            .into_iter()
            .chain([SHARED_INFORMERS]);
        let clients = client::ClusterClients::new(&config, options.qps, options.burst, components)?;
        (client, Arc::new(clients))
    };

    let identity = leader::default_identity();
    let resync = controller_set::resync_period(args.min_resync_period);
    let controllers = enabled.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    tracing::info!(%controllers, %identity, "starting ecm");
    let work = |stop: CancellationToken| {
        let (clients, options, health, enabled, identity) = (
            Arc::clone(&clients),
            args.options.clone(),
            health.clone(),
            enabled.clone(),
            identity.clone(),
        );
        async move {
            let runtime = Arc::new(ControllerSet::with_resync_period(
                clients.as_ref(),
                &enabled,
                &options,
                &identity,
                &stop,
                resync,
            ));
            let ready = tokio::spawn({
                let (runtime, health, stop) = (Arc::clone(&runtime), health.clone(), stop.clone());
                async move {
                    while !runtime.has_synced() && !stop.is_cancelled() {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    health.set_ready(runtime.has_synced());
                }
            });
            runtime.run(stop).await;
            ready.abort();
        }
    };
    let outcome = if args.leader_elect {
        // A standby waiting for the lease is ready: it is healthy and
        // nothing depends on it until it leads.
        health.set_ready(true);
        let leader_options = leader::LeaderOptions {
            name: args.leader_elect_resource_name.clone(),
            namespace: lease_namespace(
                args.leader_elect_resource_namespace.as_deref(),
                std::env::var("POD_NAMESPACE").ok().as_deref(),
            ),
            identity: identity.clone(),
            lease_duration: args.leader_elect_lease_duration,
            renew_deadline: args.leader_elect_renew_deadline,
        };
        leader::run_as_leader(client.clone(), &leader_options, shutdown.clone(), |stop| {
            health.set_ready(false);
            work(stop)
        })
        .await
    } else {
        work(shutdown.clone()).await;
        Ok(())
    };
    if let Err(err) = &outcome {
        health.set_healthy(false);
        tracing::error!(error = %err, "ecm stopped");
    }
    shutdown.cancel();
    if let Some(embedded) = embedded {
        embedded.handle.shutdown().await;
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_namespace_is_the_flag_then_a_non_empty_pod_namespace_then_kube_system() {
        assert_eq!(lease_namespace(Some("ops"), Some("ecm")), "ops");
        assert_eq!(lease_namespace(None, Some("ecm")), "ecm");
        assert_eq!(lease_namespace(None, Some("")), "kube-system");
        assert_eq!(lease_namespace(None, None), "kube-system");
    }
}
