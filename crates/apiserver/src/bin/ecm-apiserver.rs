//! `ecm-apiserver`: the in-memory Kubernetes API server on a TCP port.
//!
//! ```text
//! ecm-apiserver --listen 127.0.0.1:6443 --kubeconfig-out /tmp/kc --simulate-kubelet
//! kubectl --kubeconfig /tmp/kc get pods -w
//! ```
//!
//! `--token-auth-file` and `--authorization-policy-file` (kube-apiserver's
//! formats) set what `TokenReview` and `SubjectAccessReview` answer; the
//! admin API's `/ecm-admin/auth` reads and replaces them at run time.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ecm_apiserver::{ApiServer, AuthConfig, Config, FaultConfig, KubeletConfig};

/// An in-memory Kubernetes API server for tests, demos and simulation.
#[derive(Debug, Parser)]
#[command(name = "ecm-apiserver", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Write a kubeconfig for the server to this file.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// Run the pod-status simulator (pods on a node get IPs and become Ready).
    #[arg(long)]
    simulate_kubelet: bool,
    /// Pod CIDRs of the simulated kubelet (one per IP family).
    #[arg(long, value_delimiter = ',', default_value = "10.244.0.0/16")]
    pod_cidr: Vec<String>,
    /// Seconds from a pod starting to it becoming Ready.
    #[arg(long, default_value_t = 1.0)]
    ready_delay: f64,
    /// Fault injection rules (JSON or YAML FaultConfig).
    #[arg(long)]
    faults: Option<PathBuf>,
    /// Static tokens for TokenReview, as kube-apiserver's: CSV lines
    /// `token,user,uid,"group1,group2"`.
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// Allow rules for SubjectAccessReview, as kube-apiserver's ABAC policy
    /// file: one JSON `Policy` per line (e.g. `{"apiVersion":
    /// "abac.authorization.kubernetes.io/v1beta1", "kind": "Policy", "spec":
    /// {"user": "prometheus", "nonResourcePath": "/metrics", "readonly": true}}`).
    #[arg(long)]
    authorization_policy_file: Option<PathBuf>,
    /// Events of history kept per resource.
    #[arg(long, default_value_t = 10_000)]
    history_size: usize,
    /// Seconds between watch bookmarks.
    #[arg(long, default_value_t = 60.0)]
    bookmark_interval: f64,
    /// Log level (error, warn, info, debug, trace).
    #[arg(long, default_value = "info")]
    log_level: tracing::Level,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_max_level(args.log_level)
        .with_writer(std::io::stderr)
        .init();
    let mut config = Config::default()
        .history_size(args.history_size)
        .bookmark_interval(Duration::from_secs_f64(args.bookmark_interval));
    if args.simulate_kubelet {
        config = config.kubelet(
            KubeletConfig::default()
                .pod_cidrs(args.pod_cidr.clone())
                .ready_delay(Duration::from_secs_f64(args.ready_delay)),
        );
    }
    if let Some(path) = &args.faults {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        config = config.faults(FaultConfig::parse(&text)?);
    }
    let mut auth = AuthConfig::default();
    if let Some(path) = &args.token_auth_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        auth.tokens = AuthConfig::parse_token_file(&text).with_context(|| format!("reading {}", path.display()))?;
    }
    if let Some(path) = &args.authorization_policy_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        auth.policies = AuthConfig::parse_policy_file(&text).with_context(|| format!("reading {}", path.display()))?;
    }
    config = config.auth(auth);
    let server = ApiServer::new(config)?;
    let handle = server
        .serve(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    if let Some(path) = &args.kubeconfig_out {
        handle
            .write_kubeconfig(path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    tracing::info!(url = %handle.url(), "ecm-apiserver serving");
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    handle.shutdown().await;
    Ok(())
}
