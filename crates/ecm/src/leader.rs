//! Leader election on a `coordination.k8s.io/v1` Lease, so that only one
//! replica runs the controllers.
//!
//! Built on `kube-lease-manager`. Its model is a lease duration and a grace
//! period (how long before expiry the holder renews); kube-controller-manager's
//! flags map onto it as duration = `--leader-elect-lease-duration` and grace =
//! lease duration − `--leader-elect-renew-deadline`. Like
//! kube-controller-manager, a replica that loses the lease stops at once
//! (the process exits non-zero and is restarted); on a clean shutdown the
//! lease is released so a standby takes over without waiting for expiry.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use kube_lease_manager::{LeaseCreateMode, LeaseManagerBuilder};
use tokio_util::sync::CancellationToken;

/// How to elect a leader.
#[derive(Clone, Debug)]
pub struct LeaderOptions {
    /// The Lease's name.
    pub name: String,
    /// The Lease's namespace.
    pub namespace: String,
    /// This replica's identity (holder name).
    pub identity: String,
    /// How long a lease lasts without renewal.
    pub lease_duration: Duration,
    /// How long the holder keeps trying to renew before giving up.
    pub renew_deadline: Duration,
}

/// client-go's leader-election gauge: 1 while this replica holds the Lease
/// named by the `name` label, 0 while it waits (dashboards and alerts written
/// for kube-controller-manager read it).
pub const MASTER_STATUS: &str = "leader_election_master_status";

fn report_leadership(lease: &str, leading: bool) {
    metrics::gauge!(MASTER_STATUS, "name" => lease.to_owned()).set(if leading { 1.0 } else { 0.0 });
}

/// Waits for leadership, then runs `work` until `shutdown` is cancelled or
/// leadership is lost (an error). `work` gets a token to stop on.
pub async fn run_as_leader<F, Fut>(
    client: kube::Client,
    options: &LeaderOptions,
    shutdown: CancellationToken,
    work: F,
) -> Result<()>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    let duration = options.lease_duration.as_secs().max(2);
    let grace = duration
        .saturating_sub(options.renew_deadline.as_secs())
        .clamp(1, duration - 1);
    let manager = LeaseManagerBuilder::new(client, &options.name)
        .with_namespace(&options.namespace)
        .with_identity(&options.identity)
        .with_duration(duration)
        .with_grace(grace)
        .with_create_mode(LeaseCreateMode::AutoCreate)
        .build()
        .await
        .with_context(|| format!("cannot set up the leader lease {}/{}", options.namespace, options.name))?;
    let (mut is_leader, lease_task) = manager.watch().await;

    tracing::info!(lease = %format!("{}/{}", options.namespace, options.name), identity = %options.identity, "waiting for leadership");
    report_leadership(&options.name, false);
    while !*is_leader.borrow_and_update() {
        tokio::select! {
            changed = is_leader.changed() => changed.context("leader election stopped")?,
            () = shutdown.cancelled() => return Ok(()),
        }
    }
    tracing::info!(identity = %options.identity, "became the leader");
    report_leadership(&options.name, true);

    let stop = shutdown.child_token();
    let work = work(stop.clone());
    tokio::pin!(work);
    let lost = tokio::select! {
        () = &mut work => false,
        lost = async {
            loop {
                if is_leader.changed().await.is_err() || !*is_leader.borrow_and_update() {
                    return true;
                }
            }
        } => lost,
    };
    stop.cancel();
    report_leadership(&options.name, false);
    if lost {
        tracing::error!("lost leadership; stopping");
        work.await;
        bail!("lost the leader lease {}/{}", options.namespace, options.name);
    }
    // Dropping the receiver makes the lease task release the lease.
    drop(is_leader);
    match lease_task.await {
        Ok(Ok(_)) => tracing::info!("released the leader lease"),
        Ok(Err(err)) => tracing::warn!(error = %err, "could not release the leader lease"),
        Err(err) => tracing::warn!(error = %err, "leader election task failed"),
    }
    Ok(())
}

/// This replica's default identity: the host name plus a random suffix, as
/// kube-controller-manager forms it.
pub fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "ecm".to_owned());
    let suffix: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64 ^ u64::from(std::process::id()));
    format!("{host}_{suffix:016x}")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use ecm_apiserver::ApiServer;
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::api::Api;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

    use super::*;

    fn options(identity: &str) -> LeaderOptions {
        LeaderOptions {
            name: "ecm".into(),
            namespace: "kube-system".into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(3),
            renew_deadline: Duration::from_secs(2),
        }
    }

    async fn holder(server: &ApiServer) -> Option<String> {
        let leases: Api<Lease> = Api::namespaced(server.client(), "kube-system");
        leases
            .get_opt("ecm")
            .await
            .unwrap()
            .and_then(|l| l.spec?.holder_identity)
    }

    /// Waits (real time, with a deadline) until `check` holds.
    async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !check().await {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn master_status(snapshotter: &Snapshotter) -> Option<f64> {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .find(|(key, ..)| key.key().name() == MASTER_STATUS)
            .and_then(|(.., value)| match value {
                DebugValue::Gauge(v) => Some(v.into_inner()),
                _ => None,
            })
    }

    #[tokio::test(flavor = "current_thread")]
    async fn one_replica_leads_works_and_releases_the_lease_on_shutdown() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _guard = metrics::set_default_local_recorder(&recorder);
        let server = ApiServer::new(ecm_apiserver::Config::default()).unwrap();
        let shutdown = CancellationToken::new();
        let worked = Arc::new(AtomicUsize::new(0));
        let leader = options("a");
        let run = {
            let (worked, shutdown) = (Arc::clone(&worked), shutdown.clone());
            run_as_leader(server.client(), &leader, shutdown, |stop| async move {
                worked.fetch_add(1, Ordering::SeqCst);
                stop.cancelled().await;
            })
        };
        let checks = async {
            eventually("the work to start", || async { worked.load(Ordering::SeqCst) == 1 }).await;
            assert_eq!(holder(&server).await.as_deref(), Some("a"));
            assert_eq!(master_status(&snapshotter), Some(1.0));
            shutdown.cancel();
        };
        let (result, ()) = tokio::join!(run, checks);
        result.unwrap();
        assert_eq!(master_status(&snapshotter), Some(0.0));
        assert_eq!(holder(&server).await, None, "the lease is released for a standby");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_standby_waits_and_takes_over_when_the_leader_stops() {
        let server = ApiServer::new(ecm_apiserver::Config::default()).unwrap();
        let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
        let (worked_a, worked_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let spawn = |identity: &'static str, stop: &CancellationToken, worked: &Arc<AtomicUsize>| {
            let (client, stop, worked) = (server.client(), stop.clone(), Arc::clone(worked));
            tokio::spawn(async move {
                run_as_leader(client, &options(identity), stop, |token| async move {
                    worked.fetch_add(1, Ordering::SeqCst);
                    token.cancelled().await;
                })
                .await
            })
        };
        let a = spawn("a", &stop_a, &worked_a);
        eventually("a to lead", || async { worked_a.load(Ordering::SeqCst) == 1 }).await;
        let b = spawn("b", &stop_b, &worked_b);
        // b keeps waiting while a renews, well past one lease duration.
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(worked_b.load(Ordering::SeqCst), 0, "two leaders at once");
        assert_eq!(holder(&server).await.as_deref(), Some("a"));

        stop_a.cancel();
        a.await.unwrap().unwrap();
        eventually("b to take over", || async { worked_b.load(Ordering::SeqCst) == 1 }).await;
        assert_eq!(holder(&server).await.as_deref(), Some("b"));
        stop_b.cancel();
        b.await.unwrap().unwrap();
    }
}
