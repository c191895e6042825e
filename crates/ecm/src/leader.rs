//! Leader election on a `coordination.k8s.io/v1` Lease, so that only one
//! replica runs the controllers.
//!
//! Built on `kube-lease-manager`. Its model is a lease duration and a grace
//! period (how long before expiry the holder renews); kube-controller-manager's
//! flags map onto it as duration = `--leader-elect-lease-duration` and grace =
//! lease duration − `--leader-elect-retry-period`, so the holder renews every
//! retry period as client-go does (whole seconds: the library's unit).
//!
//! The library keeps a holder that cannot reach the API server a leader
//! (it retries with a back-off and never says the lease is lost), so ecm
//! fences itself as client-go does with `--leader-elect-renew-deadline`: the
//! leader reads its Lease every retry period and stops as soon as the last
//! renewal it can see is older than the renew deadline, or another replica
//! holds the Lease. As the renew deadline is shorter than the lease
//! duration, a leader cut off from the API server stops before a standby can
//! take the Lease over, so two replicas never write at once.
//!
//! Like kube-controller-manager, a replica that loses the lease stops at once
//! (the process exits non-zero and is restarted); on a clean shutdown the
//! lease is released so a standby takes over without waiting for expiry.

use std::future::Future;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_lease_manager::{LeaseCreateMode, LeaseManagerBuilder};
use tokio::time::Instant;
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
    /// How often the holder renews, and checks that it still holds the Lease.
    pub retry_period: Duration,
}

/// Why a leader stopped leading.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Deposed {
    /// The lease library saw another holder.
    Lost,
    /// The Lease names another holder, or is gone.
    TakenBy(Option<String>),
    /// No renewal for longer than the renew deadline.
    RenewDeadline(Duration),
}

impl std::fmt::Display for Deposed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lost => f.write_str("the lease is held by another replica"),
            Self::TakenBy(Some(holder)) => write!(f, "the lease is held by {holder}"),
            Self::TakenBy(None) => f.write_str("the lease has no holder"),
            Self::RenewDeadline(deadline) => {
                write!(f, "the lease was not renewed within the renew deadline {deadline:?}")
            }
        }
    }
}

/// Lease duration and grace period in the lease library's whole seconds:
/// the holder renews every retry period (at least a second) and the grace
/// stays within `1..duration`.
fn lease_timing(options: &LeaderOptions) -> (u64, u64) {
    let duration = options.lease_duration.as_secs().max(2);
    let retry = options.retry_period.as_secs().max(1);
    let grace = duration.saturating_sub(retry).clamp(1, duration - 1);
    (duration, grace)
}

/// Returns when this replica can no longer be sure it holds the Lease: it
/// reads the Lease every retry period; another holder, or a last renewal
/// older than the renew deadline, deposes it. When the deadline computed
/// from the last renewal it saw comes, it reads once more before deciding
/// (the library renews on its own clock, so the renewal may have just
/// happened); a read that fails or does not answer in time counts as no
/// renewal. Called right after the Lease was acquired or renewed.
async fn fence(leases: Api<Lease>, options: &LeaderOptions) -> Deposed {
    // The longest a read may take once the deadline is near: a stop within
    // the renew deadline plus this, well inside the lease duration.
    let last_read = options.retry_period.min(Duration::from_millis(200));
    let mut deadline = Instant::now() + options.renew_deadline;
    loop {
        let read_until = deadline.max(Instant::now() + last_read);
        match tokio::time::timeout_at(read_until, leases.get_opt(&options.name)).await {
            Ok(Ok(lease)) => {
                let spec = lease.and_then(|l| l.spec).unwrap_or_default();
                if spec.holder_identity.as_deref() != Some(options.identity.as_str()) {
                    return Deposed::TakenBy(spec.holder_identity);
                }
                if let Some(renewed) = spec.renew_time {
                    // The holder (this replica) wrote renewTime with its own clock.
                    let age = SystemTime::now()
                        .duration_since(SystemTime::from(renewed.0))
                        .unwrap_or(Duration::ZERO);
                    if age >= options.renew_deadline {
                        return Deposed::RenewDeadline(options.renew_deadline);
                    }
                    deadline = Instant::now() + options.renew_deadline.saturating_sub(age);
                }
            }
            Ok(Err(err)) => tracing::warn!(error = %err, "cannot read the leader lease"),
            Err(_) => tracing::warn!("reading the leader lease timed out"),
        }
        if Instant::now() >= deadline {
            return Deposed::RenewDeadline(options.renew_deadline);
        }
        tokio::time::sleep_until(deadline.min(Instant::now() + options.retry_period)).await;
    }
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
    let (duration, grace) = lease_timing(options);
    let leases: Api<Lease> = Api::namespaced(client.clone(), &options.namespace);
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
    let deposed = tokio::select! {
        () = &mut work => None,
        deposed = fence(leases, options) => Some(deposed),
        () = async {
            loop {
                if is_leader.changed().await.is_err() || !*is_leader.borrow_and_update() {
                    return;
                }
            }
        } => Some(Deposed::Lost),
    };
    stop.cancel();
    report_leadership(&options.name, false);
    if let Some(deposed) = deposed {
        tracing::error!(reason = %deposed, "lost leadership; stopping");
        // As kube-controller-manager (which exits at once): returning drops
        // `work` with its in-flight syncs, not awaited, so none of them
        // writes once the partition heals (a sync retrying against an
        // unreachable server could otherwise outlive the lease).
        bail!(
            "lost the leader lease {}/{}: {deposed}",
            options.namespace,
            options.name
        );
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
    let suffix: u64 = SystemTime::now()
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
            retry_period: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_holder_renews_every_retry_period() {
        let timing = |lease, retry| {
            lease_timing(&LeaderOptions {
                lease_duration: Duration::from_secs(lease),
                retry_period: Duration::from_secs(retry),
                ..options("a")
            })
        };
        // kube-controller-manager's defaults: 15 s lease, 2 s retry.
        assert_eq!(timing(15, 2), (15, 13));
        assert_eq!(timing(3, 1), (3, 2));
        assert_eq!(timing(2, 0), (2, 1), "at least a second between renewals");
        assert_eq!(
            timing(3, 5),
            (3, 1),
            "a retry longer than the lease still renews in time"
        );
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
        let deadline = Instant::now() + Duration::from_secs(30);
        while !check().await {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_leader_cut_off_from_the_api_server_stops_within_the_renew_deadline() {
        use ecm_apiserver::{FaultAction, FaultConfig, FaultRule};
        let server = ApiServer::new(ecm_apiserver::Config::default()).unwrap();
        let stop = CancellationToken::new();
        let worked = Arc::new(AtomicUsize::new(0));
        let work_token = Arc::new(std::sync::Mutex::new(None::<CancellationToken>));
        let run = tokio::spawn({
            let (client, stop) = (server.client_with_user_agent("ecm/test replica-a"), stop.clone());
            let (worked, work_token) = (Arc::clone(&worked), Arc::clone(&work_token));
            async move {
                run_as_leader(client, &options("a"), stop, |token| async move {
                    *work_token.lock().unwrap() = Some(token.clone());
                    worked.fetch_add(1, Ordering::SeqCst);
                    // Never ends by itself, as a sync retrying against an unreachable server.
                    std::future::pending::<()>().await;
                })
                .await
            }
        });
        eventually("a to lead", || async { worked.load(Ordering::SeqCst) == 1 }).await;
        // Every request of this replica fails from now on; the lease library
        // alone would keep it leading.
        let unavailable = FaultAction::Error {
            code: 503,
            retry_after_seconds: None,
            message: None,
        };
        server.set_faults(FaultConfig {
            seed: 0,
            rules: vec![FaultRule::new("*", &[], unavailable).user_agent("replica-a")],
        });
        let err = tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .expect("the leader stops")
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("renew deadline"), "{err}");
        let token = work_token.lock().unwrap().clone().unwrap();
        assert!(token.is_cancelled(), "its work was told to stop, and not awaited");
        assert_eq!(
            holder(&server).await.as_deref(),
            Some("a"),
            "not released: it cannot write"
        );
    }
}
