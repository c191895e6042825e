//! `ecm run --embedded`: the in-memory API server with its pod-status
//! simulator and its workload simulator (Deployments and ReplicaSets get
//! pods, rollouts and statuses), on 127.0.0.1, for trying ecm without a
//! cluster.
//!
//! The embedded API server has no authentication: whoever reaches it can
//! read and write every object. It listens on loopback unless the user
//! says otherwise twice (`--embedded-listen` with another address and
//! `--embedded-allow-remote`); see [`check_listen`].

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ecm_apiserver::{ApiServer, KubeletConfig, ServeHandle, ServerError, WorkloadsConfig};

use crate::health::Served;
use crate::listen::{Bound, Listen};

/// A running embedded API server.
pub struct Embedded {
    /// The server (for an in-process client).
    pub server: ApiServer,
    /// Its listener.
    pub handle: ServeHandle,
    /// Where its kubeconfig was written.
    pub kubeconfig: PathBuf,
    /// Where it listens (another port than asked for when the default was
    /// taken).
    pub bound: Bound,
}

/// Refuses a listening address other than loopback unless `allow_remote`:
/// the embedded API server has no authentication.
///
/// # Errors
///
/// `addr` is not a loopback address and `allow_remote` is false.
pub fn check_listen(addr: SocketAddr, allow_remote: bool) -> Result<()> {
    if addr.ip().is_loopback() || allow_remote {
        return Ok(());
    }
    bail!(
        "--embedded-listen {addr} is not a loopback address: the embedded API server has no \
         authentication, so anyone who can reach {addr} could read and write every object; \
         listen on 127.0.0.1 or [::1], or add --embedded-allow-remote if that is really intended"
    )
}

/// The embedded API server's configuration: pods get IPs from
/// 10.244.0.0/16 and fd00:10:244::/64 and turn Ready `ready_delay` after
/// they start; Deployments and ReplicaSets run their pods (on nodes
/// `node-1` to `node-3`). Benchmarks and tests build the same server with it.
pub fn config(ready_delay: Duration) -> ecm_apiserver::Config {
    let kubelet = KubeletConfig::default()
        .pod_cidrs(["10.244.0.0/16", "fd00:10:244::/64"])
        .ready_delay(ready_delay);
    ecm_apiserver::Config::default()
        .kubelet(kubelet)
        .workloads(WorkloadsConfig::default())
}

/// Starts the embedded API server on `listen` (on a free port instead when
/// the default is taken, as [`Listen::bind_with`] says), with pods getting
/// IPs from 10.244.0.0/16 and fd00:10:244::/64 and turning Ready
/// `ready_delay` after they start, Deployments and ReplicaSets running
/// their pods (on nodes `node-1` to `node-3`), and writes a kubeconfig
/// pointing at the address actually used to `kubeconfig`.
///
/// # Errors
///
/// The server cannot be built or bound, or the kubeconfig not written.
pub async fn start(listen: Listen, kubeconfig: PathBuf, ready_delay: Duration) -> Result<Embedded> {
    let server = ApiServer::new(config(ready_delay)).context("cannot start the embedded API server")?;
    let (handle, bound) = listen
        .bind_with("the embedded API server", |addr| {
            let server = server.clone();
            async move {
                let handle = server.serve(addr).await.map_err(|err| match err {
                    ServerError::Io(err) => err,
                    other => io::Error::other(other),
                })?;
                let local = handle.addr();
                Ok((handle, local))
            }
        })
        .await?;
    handle
        .write_kubeconfig(&kubeconfig)
        .with_context(|| format!("cannot write {}", kubeconfig.display()))?;
    Ok(Embedded {
        server,
        handle,
        kubeconfig,
        bound,
    })
}

/// What to tell the person who started it: the API server's URL, the
/// probe and metrics addresses, and any default address that was taken.
pub fn instructions(embedded: &Embedded, served: &Served) -> String {
    let kc = embedded.kubeconfig.display();
    let mut notices = String::new();
    let listeners = [
        (Some(embedded.bound), "the embedded API server"),
        (served.probes, "health probes (/healthz, /readyz)"),
        (served.metrics, "metrics (/metrics)"),
    ];
    for (bound, what) in listeners {
        if let Some(notice) = bound.and_then(|b| b.notice(what)) {
            notices.push_str("\nNote: ");
            notices.push_str(&notice);
            notices.push('\n');
        }
    }
    let endpoints: String = [
        served
            .probes
            .map(|p| format!("Health probes: http://{}/healthz\n", p.addr)),
        served.metrics_url().map(|url| {
            let auth = if served.metrics_secure {
                " (HTTPS: a bearer token the API server authenticates, allowed to get /metrics)"
            } else {
                ""
            };
            format!("Metrics: {url}{auth}\n")
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!(
        "{notices}\necm is running against an embedded Kubernetes API server at {url}\n\
         \n  export KUBECONFIG={kc}\n\
         \x20 kubectl create deployment web --image=nginx --replicas=3\n\
         \x20 kubectl expose deployment web --port 80\n\
         \x20 kubectl get endpointslices -l kubernetes.io/service-name=web -w\n\
         \nDeployments get ReplicaSets and pods; pods get an IP and become Ready after a moment\n\
         (try kubectl scale deployment web --replicas=5, kubectl rollout restart deployment web).\n\
         {endpoints}\
         Stop with Ctrl-C.\n",
        url = embedded.handle.url(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_accepted_unless_remote_is_allowed() {
        for ok in ["127.0.0.1:6443", "127.0.0.2:0", "[::1]:6443"] {
            check_listen(ok.parse().unwrap(), false).unwrap();
        }
        for remote in ["0.0.0.0:6443", "[::]:6443", "10.0.0.1:6443"] {
            let err = check_listen(remote.parse().unwrap(), false).unwrap_err().to_string();
            assert!(err.contains("--embedded-allow-remote"), "{err}");
            check_listen(remote.parse().unwrap(), true).unwrap();
        }
    }
}
