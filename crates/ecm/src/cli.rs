//! The command line: `run`, `simulate`, `explain`, `shadow`, `version`.

// A command-line program: printing is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::client::ClientSource;
use crate::controller_set::{ControllerSet, SHARED_INFORMERS};
use crate::controllers::ControllerName;
use crate::controllers::parse_controllers;
use crate::duration::parse_duration;
use crate::health::Health;
use crate::listen::Listen;
use crate::logging::LogFormat;
use crate::options::{ControllerOptions, parse_incremental_syncs};
use crate::runtime::RuntimeFlags;
use crate::secure::MetricsSecurityFlags;
use crate::{client, controller_set, embedded, explain, health, leader, logging, shadow, signals, simulate};
use ecm_controller::IncrementalSyncs;

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
        /// Overrides the scenario's --incremental-syncs (on, off or verify).
        #[arg(long, env = "ECM_INCREMENTAL_SYNCS", value_parser = parse_incremental_syncs)]
        incremental_syncs: Option<IncrementalSyncs>,
    },
    /// Explain why pods are or are not endpoints, and what the controllers
    /// would write (kubectl-like).
    #[command(subcommand)]
    Explain(explain::ExplainCommand),
    /// Shadow mode: compare what ecm would write with what exists (written
    /// by kube-controller-manager), never writing anything.
    Shadow(Box<shadow::ShadowArgs>),
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

    /// Address of the embedded API server: loopback only, unless
    /// --embedded-allow-remote (it has no authentication). When the default
    /// port is taken, a free one is used instead and printed.
    #[arg(long, default_value = "127.0.0.1:6443", requires = "embedded")]
    embedded_listen: SocketAddr,

    /// Let --embedded-listen be a non-loopback address. The embedded API
    /// server has no authentication: anyone who can reach it can read and
    /// write every object.
    #[arg(long, requires = "embedded")]
    embedded_allow_remote: bool,

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

    /// How often the leader renews its lease and checks it still holds it.
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

    #[command(flatten)]
    runtime: RuntimeFlags,

    /// Address serving /healthz and /readyz ("0" disables). With
    /// --embedded and not given: 127.0.0.1 on the same port, or a free port
    /// when that one is taken.
    #[arg(long, default_value = "0.0.0.0:8081")]
    health_probe_bind_address: String,

    /// Address serving /metrics ("0" disables). With --embedded and not
    /// given: 127.0.0.1 on the same port, or a free port when that one is
    /// taken.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_bind_address: String,

    #[command(flatten)]
    metrics_security: MetricsSecurityFlags,

    /// Which listening addresses were given on the command line (filled in
    /// from clap's matches, not a flag).
    #[arg(skip)]
    explicit: Explicit,
}

/// Which of the listening-address flags the user gave explicitly: only a
/// default moves to loopback in embedded mode or falls back to a free port.
#[derive(Clone, Copy, Debug, Default)]
struct Explicit {
    embedded_listen: bool,
    health_probe_bind_address: bool,
    metrics_bind_address: bool,
}

impl Explicit {
    fn from_matches(matches: &clap::ArgMatches) -> Self {
        let given = |id: &str| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
        Self {
            embedded_listen: given("embedded_listen"),
            health_probe_bind_address: given("health_probe_bind_address"),
            metrics_bind_address: given("metrics_bind_address"),
        }
    }
}

/// The probe or metrics listening address of `flag` set to `value`: `None`
/// for "0". In embedded mode a default moves to 127.0.0.1 (same port) and
/// may fall back to a free port; an explicit address is used as given.
fn server_listen(flag: &'static str, value: &str, explicit: bool, embedded: bool) -> Result<Option<Listen>> {
    let Some(addr) = address(flag, value)? else {
        return Ok(None);
    };
    let listen = Listen::new(addr, flag, explicit, embedded);
    Ok(Some(if embedded && !explicit {
        listen.on_loopback()
    } else {
        listen
    }))
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
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    if let (Command::Run(args), Some(("run", run))) = (&mut cli.command, matches.subcommand()) {
        args.explicit = Explicit::from_matches(run);
    }
    logging::init(cli.log_format, cli.verbosity);
    let outcome = match cli.command {
        Command::Version => {
            println!(
                "ecm {} (Kubernetes v1.36 endpoint controllers)",
                env!("CARGO_PKG_VERSION")
            );
            Ok(())
        }
        Command::Simulate {
            file,
            incremental_syncs,
        } => crate::scenario::Scenario::load(&file)
            .and_then(|mut scenario| {
                if let Some(mode) = incremental_syncs {
                    scenario.options.incremental_syncs = mode;
                }
                simulate::run_blocking(scenario)
            })
            .and_then(|result| {
                println!("{}", serde_json::to_string(&result)?);
                Ok(())
            }),
        Command::Explain(command) => explain::run(&command).map(|text| print!("{text}")),
        Command::Shadow(args) => match shadow::run(&args) {
            Ok((text, diverged)) => {
                print!("{text}");
                if diverged {
                    return ExitCode::FAILURE;
                }
                Ok(())
            }
            Err(err) => Err(err),
        },
        Command::Run(args) => {
            args.runtime.place_code();
            args.runtime.build().and_then(|rt| rt.block_on(run(*args)))
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ecm: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: RunArgs) -> Result<()> {
    let enabled = parse_controllers(&args.controllers)?;
    if args.embedded {
        embedded::check_listen(args.embedded_listen, args.embedded_allow_remote)?;
    }
    let probes = server_listen(
        "health-probe-bind-address",
        &args.health_probe_bind_address,
        args.explicit.health_probe_bind_address,
        args.embedded,
    )?;
    let metrics_listen = server_listen(
        "metrics-bind-address",
        &args.metrics_bind_address,
        args.explicit.metrics_bind_address,
        args.embedded,
    )?;
    let shutdown = CancellationToken::new();
    signals::stop_on_signals(shutdown.clone());
    let metrics = health::install_metrics()?;
    let health = Health::new();

    let mut embedded = None;
    // The process's own client (start-up check, leader election) and the
    // per-component clients the controllers and informers use.
    let (client, clients): (kube::Client, Arc<dyn ClientSource + Send + Sync>) = if args.embedded {
        let listen = Listen::new(
            args.embedded_listen,
            "embedded-listen",
            args.explicit.embedded_listen,
            true,
        );
        let started = embedded::start(listen, args.embedded_kubeconfig.clone(), args.embedded_pod_ready_delay).await?;
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
    // Secure metrics review tokens and access through the client, so they
    // are served once it exists.
    let secure = args
        .metrics_security
        .secure_metrics(args.embedded, &client, metrics_listen.map(|l| l.addr.ip()))?;
    let served = health::serve_with_routes(
        health.clone(),
        Some(metrics),
        axum::Router::new(),
        probes,
        metrics_listen,
        secure,
        shutdown.clone(),
    )
    .await?;
    tracing::info!(addresses = ?served.addresses(), metrics_secure = served.metrics_secure, "serving health probes and metrics");
    if let Some(started) = &embedded {
        println!("{}", embedded::instructions(started, &served));
    }

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
            retry_period: args.leader_elect_retry_period,
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

    #[test]
    fn embedded_mode_moves_default_server_addresses_to_loopback_and_keeps_explicit_ones() {
        let flag = "metrics-bind-address";
        let listen = |value, explicit, embedded| server_listen(flag, value, explicit, embedded).unwrap().unwrap();
        let default = listen("0.0.0.0:8080", false, true);
        assert_eq!(default.addr, "127.0.0.1:8080".parse().unwrap());
        assert!(default.fallback, "a default may fall back to a free port");
        let explicit = listen("0.0.0.0:8080", true, true);
        assert_eq!(explicit.addr, "0.0.0.0:8080".parse().unwrap());
        assert!(!explicit.fallback, "an explicit address is used as given or fails");
        let cluster = listen("0.0.0.0:8080", false, false);
        assert_eq!(cluster.addr, "0.0.0.0:8080".parse().unwrap());
        assert!(!cluster.fallback, "in a pod the probes' ports are fixed");
        assert!(server_listen(flag, "0", false, true).unwrap().is_none());
    }

    #[test]
    fn the_command_line_records_which_addresses_were_given() {
        let matches = command()
            .try_get_matches_from(["ecm", "run", "--embedded", "--metrics-bind-address", "127.0.0.1:9090"])
            .unwrap();
        let explicit = Explicit::from_matches(matches.subcommand_matches("run").unwrap());
        assert!(explicit.metrics_bind_address);
        assert!(!explicit.health_probe_bind_address);
        assert!(!explicit.embedded_listen);
    }
}
