//! The `ecm explain` command line: where the objects come from and how the
//! report is printed.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use ecm_informer::ObjectKey;

use super::load::{load, load_scenario};
use super::render::table;
use super::report::{Report, Request, explain};
use crate::client::ClientOptions;
use crate::controllers::parse_controllers;
use crate::options::ControllerOptions;
use crate::parity::Limits;
use crate::scenario::Scenario;

/// `ecm explain`: what to explain.
#[derive(Subcommand, Debug)]
pub enum ExplainCommand {
    /// Explain one Service: every pod's verdict, the desired objects and
    /// their differences from what exists.
    Service(ExplainArgs),
}

/// Output format.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum Output {
    /// Human-readable tables.
    #[default]
    Table,
    /// The report as JSON.
    Json,
    /// The report as YAML.
    Yaml,
}

/// `ecm explain service` arguments.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The Service's name.
    pub name: String,
    /// The Service's namespace.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Explain only this pod, also when the selector does not match it.
    #[arg(long)]
    pub pod: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Kubeconfig file (default: KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long, conflicts_with_all = ["embedded", "scenario"])]
    pub kubeconfig: Option<PathBuf>,
    /// Read from the API server of a running `ecm run --embedded` (through
    /// the kubeconfig it wrote, --embedded-kubeconfig).
    #[arg(long, conflicts_with = "scenario")]
    pub embedded: bool,
    /// The kubeconfig `ecm run --embedded` wrote.
    #[arg(long, default_value = "ecm-embedded.kubeconfig")]
    pub embedded_kubeconfig: PathBuf,
    /// Read from a conformance scenario (or manifest) file instead of a
    /// cluster; its controllers and options apply.
    #[arg(short = 'f', long)]
    pub scenario: Option<PathBuf>,
    /// Controllers whose verdicts to give ('*', 'name', '-name').
    #[arg(long, default_value = "*")]
    pub controllers: String,
    /// `--max-endpoints-per-slice` of the controllers explained.
    #[arg(long, default_value_t = 100)]
    pub max_endpoints_per_slice: u64,
    /// `--mirroring-max-endpoints-per-subset` of the controllers explained.
    #[arg(long, default_value_t = 1000)]
    pub mirroring_max_endpoints_per_subset: u64,
}

impl ExplainArgs {
    fn limits(&self) -> Limits {
        limits(&ControllerOptions {
            max_endpoints_per_slice: self.max_endpoints_per_slice,
            mirroring_max_endpoints_per_subset: self.mirroring_max_endpoints_per_subset,
            ..ControllerOptions::default()
        })
    }
}

/// The limits of `options`.
pub fn limits(options: &ControllerOptions) -> Limits {
    Limits {
        max_endpoints_per_slice: usize::try_from(options.max_endpoints_per_slice).unwrap_or(usize::MAX),
        mirroring_max_endpoints_per_subset: usize::try_from(options.mirroring_max_endpoints_per_subset)
            .unwrap_or(usize::MAX),
    }
}

/// Explains the Service `args` names, reading from where `args` says.
pub async fn report(args: &ExplainArgs) -> Result<Report> {
    let service = ObjectKey::new(&args.namespace, &args.name);
    let (caches, controllers, limits) = if let Some(path) = &args.scenario {
        let scenario = Scenario::load(path)?;
        let caches = load_scenario(&scenario, &args.namespace).await?;
        let limits = limits(&scenario.options);
        (caches, scenario.controllers, limits)
    } else {
        let kubeconfig = if args.embedded {
            Some(args.embedded_kubeconfig.clone())
        } else {
            args.kubeconfig.clone()
        };
        let options = ClientOptions {
            kubeconfig,
            qps: 0.0,
            burst: 0,
        };
        let client = crate::client::build(&options).await?;
        let caches = load(&client, &args.namespace).await?;
        (caches, parse_controllers(&args.controllers)?, args.limits())
    };
    let request = Request {
        service,
        pod: args.pod.clone(),
        controllers,
        limits,
    };
    Ok(explain(&caches, &request))
}

/// Runs `ecm explain`: prints the report; fails when the Service does not
/// exist.
pub fn run(command: &ExplainCommand) -> Result<String> {
    let ExplainCommand::Service(args) = command;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let report = runtime.block_on(report(args))?;
    let text = match args.output {
        Output::Table => table(&report),
        Output::Json => serde_json::to_string_pretty(&report)? + "\n",
        Output::Yaml => serde_saphyr::to_string(&report).context("cannot render YAML")?,
    };
    if !report.found {
        bail!("service {} not found", report.service);
    }
    Ok(text)
}
