//! Leader failover under churn: two `ecm run` replicas with leader election
//! (lease 3 s, renew deadline 2 s, retry period 1 s) against ecm-apiserver
//! over HTTP, each with its own user agent (`ECM_USER_AGENT`) and identity
//! (`HOSTNAME`), while the seeded churn of the chaos harness runs.
//!
//! - the leader is SIGKILLed: the standby takes over and the final state is
//!   exactly what the pods imply;
//! - the leader is cut off from the API server (a fault rule failing every
//!   request of its user agent): it stops at its renew deadline, before its
//!   lease expires, the standby takes over, and the write log (which records
//!   each write's user agent) shows no write by the old leader after the new
//!   one first wrote the Lease.
//!
//! Takeover times are printed (`--nocapture`), not asserted.

// A harness: printing the takeover times is its job; a failed unwrap is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

mod cluster;

use std::time::{Duration, Instant};

use cluster::objects::NAMESPACE;
use cluster::process::EcmProcess;
use cluster::run::{MAX_PER_SLICE, shadow_clean, wait_quiet};
use cluster::world::{Shape, World};
use ecm_apiserver::{FaultAction, FaultConfig, FaultRule};

const LEASE: Duration = Duration::from_secs(3);
const RETRY: Duration = Duration::from_secs(1);
/// Churn operations, and the one at which the leader is hit.
const OPS: usize = 120;
const HIT_AT: usize = 40;
/// Real time allowed for a takeover before the test gives up.
const TAKEOVER_DEADLINE: Duration = Duration::from_secs(60);

fn replica(world: &World, name: &str) -> EcmProcess {
    let max = MAX_PER_SLICE.to_string();
    let agent = format!("ecm-{name}");
    EcmProcess::spawn(
        &[
            "run",
            "--leader-elect=true",
            "--leader-elect-lease-duration",
            "3s",
            "--leader-elect-renew-deadline",
            "2s",
            "--leader-elect-retry-period",
            "1s",
            "--leader-elect-resource-namespace",
            NAMESPACE,
            "--max-endpoints-per-slice",
            &max,
        ],
        &world.kubeconfig,
        &[("ECM_USER_AGENT", &agent), ("HOSTNAME", name)],
        world.dir.join(format!("{name}.stderr")),
    )
}

/// The holder of the Lease, as stored.
fn holder(world: &World) -> Option<String> {
    world
        .server
        .get_object("leases", Some(NAMESPACE), "ecm")?
        .pointer("/spec/holderIdentity")?
        .as_str()
        .map(str::to_owned)
}

fn leads(world: &World, name: &str) -> bool {
    holder(world).is_some_and(|h| h.starts_with(&format!("{name}_")))
}

async fn until(what: &str, mut check: impl FnMut() -> bool) -> Instant {
    let deadline = Instant::now() + TAKEOVER_DEADLINE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Instant::now()
}

async fn pause(op: usize) {
    tokio::time::sleep(Duration::from_millis(5 + (op as u64 * 7) % 30)).await;
}

/// Two replicas, `replica-a` leading and `replica-b` waiting.
async fn two_replicas(world: &World) -> (EcmProcess, EcmProcess) {
    let a = replica(world, "replica-a");
    until("replica-a to lead", || leads(world, "replica-a")).await;
    let b = replica(world, "replica-b");
    // b is up and waiting once it has read the Lease; give it a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(leads(world, "replica-a"));
    (a, b)
}

/// Asserts the final state is exact (oracle and `ecm shadow --once`) and
/// nothing panicked.
async fn converges_exactly(world: &World, replicas: &[&EcmProcess]) {
    let quiet = wait_quiet(world).await;
    let problems = world.problems(MAX_PER_SLICE);
    assert!(quiet.is_some() && problems.is_empty(), "not converged: {problems:#?}");
    assert!(shadow_clean(world), "ecm shadow --once found differences");
    for replica in replicas {
        assert_eq!(replica.panics(), Vec::<String>::new());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_from_a_killed_leader_under_churn() {
    let mut world = World::start(
        "failover-kill",
        21,
        Shape {
            services: 3,
            pods: 12,
            nodes: 3,
        },
    )
    .await;
    let (mut a, b) = two_replicas(&world).await;
    let mut killed = None;
    let mut took_over = None;
    for op in 0..OPS {
        if op == HIT_AT {
            a.kill();
            killed = Some(Instant::now());
        }
        world.churn_once().await;
        if took_over.is_none() && killed.is_some() && leads(&world, "replica-b") {
            took_over = Some(Instant::now());
        }
        pause(op).await;
    }
    let took_over = match took_over {
        Some(at) => at,
        None => until("replica-b to lead", || leads(&world, "replica-b")).await,
    };
    let takeover = took_over - killed.unwrap();
    println!(
        "failover (SIGKILL): replica-b leads {:.2}s after replica-a was killed (lease {}s + retry {}s = {}s)",
        takeover.as_secs_f64(),
        LEASE.as_secs(),
        RETRY.as_secs(),
        (LEASE + RETRY).as_secs()
    );
    converges_exactly(&world, &[&a, &b]).await;
    let by_b = world
        .server
        .write_log()
        .iter()
        .filter(|w| {
            w.resource == "endpointslices" && w.user_agent.as_deref().is_some_and(|u| u.contains("ecm-replica-b"))
        })
        .count();
    assert!(by_b > 0, "the new leader wrote the churn's slices");
    drop((a, b));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_api_server_stops_before_the_standby_takes_over() {
    let mut world = World::start(
        "failover-cut",
        22,
        Shape {
            services: 3,
            pods: 12,
            nodes: 3,
        },
    )
    .await;
    let (mut a, b) = two_replicas(&world).await;
    let unavailable = FaultAction::Error {
        code: 503,
        retry_after_seconds: None,
        message: None,
    };
    let mut cut = None;
    let (mut a_stopped, mut b_leads) = (None, None);
    for op in 0..OPS {
        if op == HIT_AT {
            world.server.set_faults(FaultConfig {
                seed: 0,
                rules: vec![FaultRule::new("*", &[], unavailable.clone()).user_agent("ecm-replica-a")],
            });
            cut = Some((Instant::now(), world.server.write_count()));
        }
        world.churn_once().await;
        if cut.is_some() {
            if a_stopped.is_none() && a.exited().is_some() {
                a_stopped = Some(Instant::now());
            }
            if b_leads.is_none() && leads(&world, "replica-b") {
                b_leads = Some(Instant::now());
            }
        }
        pause(op).await;
    }
    let a_stopped = match a_stopped {
        Some(at) => at,
        None => until("replica-a to stop", || a.exited().is_some()).await,
    };
    let b_leads = match b_leads {
        Some(at) => at,
        None => until("replica-b to lead", || leads(&world, "replica-b")).await,
    };
    // Heal the partition only once b leads: a stale leader would write now.
    world.server.set_faults(FaultConfig::default());
    let (cut_at, cut_index) = cut.unwrap();
    println!(
        "failover (cut off): replica-a stopped {:.2}s after the cut (renew deadline 2s), replica-b leads {:.2}s after it (lease {}s + retry {}s = {}s)",
        (a_stopped - cut_at).as_secs_f64(),
        (b_leads - cut_at).as_secs_f64(),
        LEASE.as_secs(),
        RETRY.as_secs(),
        (LEASE + RETRY).as_secs()
    );
    assert!(!a.exited().unwrap().success(), "a deposed leader exits non-zero");
    assert!(a.stderr().contains("renew deadline"), "{}", a.stderr());
    converges_exactly(&world, &[&a, &b]).await;

    let log = world.server.write_log();
    let by = |agent: &str, from: usize| {
        log[from..]
            .iter()
            .filter(|w| w.user_agent.as_deref().is_some_and(|u| u.contains(agent)))
            .count()
    };
    let acquired = cut_index
        + log[cut_index..]
            .iter()
            .position(|w| {
                w.resource == "leases" && w.user_agent.as_deref().is_some_and(|u| u.contains("ecm-replica-b"))
            })
            .expect("replica-b wrote the Lease");
    println!(
        "writes: replica-a {} before the cut, {} after it; replica-b {} (from its first Lease write on: {})",
        by("ecm-replica-a", 0) - by("ecm-replica-a", cut_index),
        by("ecm-replica-a", cut_index),
        by("ecm-replica-b", 0),
        by("ecm-replica-b", acquired)
    );
    assert!(by("ecm-replica-a", 0) > 0, "replica-a wrote while it led");
    assert_eq!(
        by("ecm-replica-a", acquired),
        0,
        "a write by the deposed leader after the new one took the Lease"
    );
    assert!(by("ecm-replica-b", acquired) > 0);
    drop((a, b));
    world.stop().await;
}
