//! The API client: kubeconfig or in-cluster configuration, a user agent,
//! client-side throttling, and a start-up check that the server answers.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use http::{HeaderName, HeaderValue};
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::throttle::ThrottleLayer;

/// The user agent ecm sends.
pub fn user_agent() -> String {
    format!("ecm/{}", env!("CARGO_PKG_VERSION"))
}

/// Where to find the cluster and how fast to talk to it.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// `--kubeconfig`; `None` means `KUBECONFIG`, `~/.kube/config`, then
    /// in-cluster configuration.
    pub kubeconfig: Option<PathBuf>,
    /// `--kube-api-qps`.
    pub qps: f32,
    /// `--kube-api-burst`.
    pub burst: u32,
}

/// Builds the client.
pub async fn build(options: &ClientOptions) -> Result<kube::Client> {
    let mut config = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("invalid kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no cluster configuration found (tried KUBECONFIG, ~/.kube/config and in-cluster); pass --kubeconfig, or use --embedded")?,
    };
    config.headers.push((
        HeaderName::from_static("user-agent"),
        HeaderValue::from_str(&user_agent())?,
    ));
    let builder = ClientBuilder::try_from(config).context("cannot build the API client")?;
    let client = match ThrottleLayer::new(options.qps, options.burst) {
        Some(layer) => builder.with_layer(&layer).build(),
        None => builder.build(),
    };
    Ok(client)
}

/// Checks that the API server answers, retrying for up to `patience`, and
/// fails with a clear message otherwise.
pub async fn check_reachable(client: &kube::Client, patience: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match client.apiserver_version().await {
            Ok(version) => {
                tracing::info!(server = %version.git_version, "connected to the API server");
                return Ok(());
            }
            Err(err) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %err, "API server not reachable yet, retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(err) => bail!("cannot reach the API server: {err}"),
        }
    }
}
