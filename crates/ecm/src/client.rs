//! The API client: kubeconfig or in-cluster configuration, a user agent,
//! client-side throttling, and a start-up check that the server answers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use http::{HeaderName, HeaderValue};
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::throttle::ThrottleLayer;

/// Environment variable replacing the `ecm/<version>` prefix of every user
/// agent ecm sends, so that the replicas of one Deployment can be told apart
/// in the API server's audit log (and by its per-client fault rules in tests).
pub const USER_AGENT_ENV: &str = "ECM_USER_AGENT";

/// The user agent ecm sends: `ecm/<version>`, or `$ECM_USER_AGENT` when set
/// and not empty.
pub fn user_agent() -> String {
    std::env::var(USER_AGENT_ENV)
        .ok()
        .filter(|agent| !agent.trim().is_empty() && HeaderValue::from_str(agent).is_ok())
        .unwrap_or_else(|| format!("ecm/{}", env!("CARGO_PKG_VERSION")))
}

/// The user agent of one component of ecm: `ecm/<version>/<component>`,
/// as kube-controller-manager appends the controller's name to its own.
pub fn component_user_agent(component: &str) -> String {
    format!("{}/{component}", user_agent())
}

/// Hands out the API client each part of ecm talks through.
///
/// kube-controller-manager gives every controller a client of its own, with
/// the controller's name in the user agent and its own `--kube-api-qps` /
/// `--kube-api-burst` budget, and the shared informers another one; ecm
/// does the same, so audit logs name the controller and one busy controller
/// does not eat the others' request budget. A plain `kube::Client` hands out
/// itself for every component (tests).
pub trait ClientSource {
    /// The client of `component` (`shared-informers`, or a controller's
    /// canonical name).
    fn client(&self, component: &str) -> kube::Client;
}

impl ClientSource for kube::Client {
    fn client(&self, _component: &str) -> kube::Client {
        self.clone()
    }
}

impl ClientSource for ecm_apiserver::ApiServer {
    fn client(&self, component: &str) -> kube::Client {
        self.client_with_user_agent(&component_user_agent(component))
    }
}

/// Clients for a real cluster: one per component, from one configuration,
/// each with its own user agent and throttle, all built at start-up.
#[derive(Clone)]
pub struct ClusterClients {
    clients: BTreeMap<String, kube::Client>,
    /// For a component not named at start-up: `ecm/<version>`.
    fallback: kube::Client,
}

impl ClusterClients {
    /// Builds a client for each of `components` and a fallback one.
    pub fn new<'a>(
        config: &kube::Config,
        qps: f32,
        burst: u32,
        components: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self> {
        let build = |user_agent: &str| -> Result<kube::Client> {
            let mut config = config.clone();
            config.headers.push((
                HeaderName::from_static("user-agent"),
                HeaderValue::from_str(user_agent)?,
            ));
            let builder = ClientBuilder::try_from(config).context("cannot build the API client")?;
            Ok(match ThrottleLayer::new(qps, burst) {
                Some(layer) => builder.with_layer(&layer).build(),
                None => builder.build(),
            })
        };
        let clients = components
            .into_iter()
            .map(|c| Ok((c.to_owned(), build(&component_user_agent(c))?)))
            .collect::<Result<_>>()?;
        Ok(Self {
            clients,
            fallback: build(&user_agent())?,
        })
    }
}

impl ClientSource for ClusterClients {
    fn client(&self, component: &str) -> kube::Client {
        self.clients.get(component).unwrap_or(&self.fallback).clone()
    }
}

/// Where to find the cluster and how fast to talk to it.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// `--kubeconfig`; `None` means `KUBECONFIG`, `~/.kube/config`, then
    /// in-cluster configuration.
    pub kubeconfig: Option<PathBuf>,
    /// `--kube-api-qps`, per client.
    pub qps: f32,
    /// `--kube-api-burst`, per client.
    pub burst: u32,
}

/// Reads the cluster configuration: `--kubeconfig`, else `KUBECONFIG`,
/// `~/.kube/config`, then in-cluster.
pub async fn load_config(options: &ClientOptions) -> Result<kube::Config> {
    let config = match &options.kubeconfig {
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
    Ok(config)
}

/// Builds the client of the process itself (start-up check, leader
/// election), with the plain `ecm/<version>` user agent.
pub async fn build(options: &ClientOptions) -> Result<kube::Client> {
    let mut config = load_config(options).await?;
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
        // Each attempt ends by the deadline: a server that accepts the
        // connection and never answers must not hold start-up for the
        // client's 295 s read timeout.
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let attempt = tokio::time::timeout(remaining.max(MIN_ATTEMPT), client.apiserver_version()).await;
        match attempt {
            Ok(Ok(version)) => {
                tracing::info!(server = %version.git_version, "connected to the API server");
                return Ok(());
            }
            // Credentials or RBAC will not fix themselves while we wait.
            Ok(Err(kube::Error::Api(status))) if status.code == 401 => bail!(
                "the API server refused ecm's credentials ({} Unauthorized: {}): check the kubeconfig's user, \
                 or the service account token mounted in the pod",
                status.code,
                status.message
            ),
            Ok(Err(kube::Error::Api(status))) if status.code == 403 => bail!(
                "the API server denied ecm access ({} Forbidden: {}): check the RBAC rules bound to ecm's \
                 user or service account (the chart's ClusterRole)",
                status.code,
                status.message
            ),
            Ok(Err(err)) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %err, "API server not reachable yet, retrying");
                let pause = deadline.saturating_duration_since(tokio::time::Instant::now());
                tokio::time::sleep(pause.min(RETRY_PAUSE)).await;
            }
            Ok(Err(err)) => bail!("cannot reach the API server: {err}"),
            Err(_) => bail!("cannot reach the API server: no answer within {patience:?}"),
        }
    }
}

/// The least time one reachability attempt is given, even past the deadline.
const MIN_ATTEMPT: Duration = Duration::from_millis(500);

/// The pause between two reachability attempts.
const RETRY_PAUSE: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, PostParams};

    async fn create_config_map(client: kube::Client, name: &str) {
        let api: Api<ConfigMap> = Api::namespaced(client, "default");
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.to_owned());
        api.create(&PostParams::default(), &cm).await.unwrap();
    }

    #[tokio::test]
    async fn a_server_that_never_answers_fails_the_start_up_check_by_its_deadline() {
        // Accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
        let started = std::time::Instant::now();
        let err = check_reachable(&client, Duration::from_millis(300)).await.unwrap_err();
        assert!(err.to_string().contains("no answer within 300ms"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "bounded by the patience, not the read timeout"
        );
        held.abort();
    }

    #[tokio::test]
    async fn each_component_writes_under_its_own_user_agent() {
        let server = ecm_apiserver::ApiServer::new(ecm_apiserver::Config::default()).unwrap();
        let listener = server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let config = kube::Config::new(listener.url().parse().unwrap());
        let clients = ClusterClients::new(&config, 20.0, 30, ["endpointslice-controller", "shared-informers"]).unwrap();
        create_config_map(clients.client("endpointslice-controller"), "a").await;
        create_config_map(clients.client("not-named-at-start"), "b").await;
        create_config_map(ClientSource::client(&server, "endpoints-controller"), "c").await;
        let agents: Vec<_> = server
            .write_log()
            .into_iter()
            .map(|w| (w.name.unwrap_or_default(), w.user_agent.unwrap_or_default()))
            .collect();
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            agents,
            [
                ("a".to_owned(), format!("ecm/{version}/endpointslice-controller")),
                ("b".to_owned(), format!("ecm/{version}")),
                ("c".to_owned(), format!("ecm/{version}/endpoints-controller")),
            ]
        );
        listener.shutdown().await;
    }
}
