//! The bench's command line.

use std::path::PathBuf;

use clap::Parser;

/// `cargo bench -p ecm --bench scale -- [options]`.
#[derive(Parser, Debug, Clone)]
#[command(about = "ecm at scale: cold start, churn, restart, memory")]
pub struct Args {
    /// Services to create (each selects its own pods).
    #[arg(long, default_value_t = 300)]
    pub services: usize,
    /// Ready pods per Service.
    #[arg(long, default_value_t = 10)]
    pub pods_per_service: usize,
    /// Namespaces the Services are spread over (round robin).
    #[arg(long, default_value_t = 1)]
    pub namespaces: usize,
    /// Nodes the pods are spread over (zones zone-a, zone-b, zone-c).
    #[arg(long, default_value_t = 100)]
    pub nodes: usize,
    /// Requests in flight while loading objects.
    #[arg(long, default_value_t = 64)]
    pub parallel: usize,
    /// Pod readiness flips per second during churn.
    #[arg(long, default_value_t = 50.0)]
    pub churn_rate: f64,
    /// Length of the churn window, seconds.
    #[arg(long, default_value_t = 20.0)]
    pub churn_secs: f64,
    /// Length of the idle window measured before churn, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub idle_secs: f64,
    /// Seed of the churn's random pod choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Quiet time (no endpoint writes) that counts as idle after a restart, seconds.
    #[arg(long, default_value_t = 3.0)]
    pub quiet_secs: f64,
    /// Give up waiting for convergence after this many seconds.
    #[arg(long, default_value_t = 900.0)]
    pub timeout_secs: f64,
    /// Shorter churn and idle windows (5 s each), for checking that it runs.
    #[arg(long)]
    pub quick: bool,
    /// Run against this cluster instead of an in-process ecm-apiserver.
    /// The bench creates its own namespaces and nodes there and deletes
    /// them at the end.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// ecm already runs against the cluster (only with --kubeconfig): do not
    /// spawn it; measure convergence after loading, churn latency and
    /// writes, but no CPU, memory or restart.
    #[arg(long, requires = "kubeconfig")]
    pub ecm_elsewhere: bool,
    /// The ecm binary to spawn (default: the release binary cargo built
    /// beside this bench).
    #[arg(long, env = "ECM_BIN")]
    pub ecm: Option<PathBuf>,
    /// JSON-lines file the run's result is appended to.
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Name of the run in the results (default: `<services>x<pods>/<namespaces>ns`).
    #[arg(long)]
    pub label: Option<String>,
    /// Accepted and ignored: cargo passes it to every bench target.
    #[arg(long, hide = true)]
    pub bench: bool,
}

impl Args {
    /// Total pods.
    pub fn pods(&self) -> usize {
        self.services * self.pods_per_service
    }

    /// The churn window, shortened by `--quick`.
    pub fn churn_secs(&self) -> f64 {
        if self.quick {
            self.churn_secs.min(5.0)
        } else {
            self.churn_secs
        }
    }

    /// The idle window, shortened by `--quick`.
    pub fn idle_secs(&self) -> f64 {
        if self.quick {
            self.idle_secs.min(5.0)
        } else {
            self.idle_secs
        }
    }

    /// The run's name.
    pub fn label(&self) -> String {
        self.label
            .clone()
            .unwrap_or_else(|| format!("{}x{}/{}ns", self.services, self.pods_per_service, self.namespaces))
    }

    /// Where results go: `--results`, else `<target>/bench-scale/results.jsonl`.
    pub fn results(&self) -> PathBuf {
        self.results.clone().unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
            target.join("bench-scale/results.jsonl")
        })
    }
}
