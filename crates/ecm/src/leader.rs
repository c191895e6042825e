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
    while !*is_leader.borrow_and_update() {
        tokio::select! {
            changed = is_leader.changed() => changed.context("leader election stopped")?,
            () = shutdown.cancelled() => return Ok(()),
        }
    }
    tracing::info!(identity = %options.identity, "became the leader");

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
