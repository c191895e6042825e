//! `ecm run --embedded`: the in-memory API server with its pod-status
//! simulator, on 127.0.0.1, for trying ecm without a cluster.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use ecm_apiserver::{ApiServer, KubeletConfig, ServeHandle};

/// A running embedded API server.
pub struct Embedded {
    /// The server (for an in-process client).
    pub server: ApiServer,
    /// Its listener.
    pub handle: ServeHandle,
    /// Where its kubeconfig was written.
    pub kubeconfig: PathBuf,
}

/// Starts the embedded API server on `listen`, with pods getting IPs from
/// 10.244.0.0/16 and fd00:10:244::/64 and turning Ready `ready_delay` after
/// they start, and writes a kubeconfig for it to `kubeconfig`.
pub async fn start(listen: SocketAddr, kubeconfig: PathBuf, ready_delay: Duration) -> Result<Embedded> {
    let kubelet = KubeletConfig::default()
        .pod_cidrs(["10.244.0.0/16", "fd00:10:244::/64"])
        .ready_delay(ready_delay);
    let server = ApiServer::new(ecm_apiserver::Config::default().kubelet(kubelet))
        .context("cannot start the embedded API server")?;
    let handle = server
        .serve(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    handle
        .write_kubeconfig(&kubeconfig)
        .with_context(|| format!("cannot write {}", kubeconfig.display()))?;
    Ok(Embedded {
        server,
        handle,
        kubeconfig,
    })
}

/// What to tell the person who started it.
pub fn instructions(embedded: &Embedded) -> String {
    let kc = embedded.kubeconfig.display();
    format!(
        "\necm is running against an embedded Kubernetes API server at {url}\n\
         \n  export KUBECONFIG={kc}\n\
         \x20 kubectl apply -f examples/\n\
         \x20 kubectl get endpoints,endpointslices\n\
         \x20 kubectl get pods -w\n\
         \nPods scheduled to a node (spec.nodeName) get an IP and become Ready after a moment.\n\
         Stop with Ctrl-C.\n",
        url = embedded.handle.url(),
    )
}
