//! One chaos run: a seeded world, faults and churn, ecm killed and
//! restarted midway, then faults off, quiescence and the oracle.

use std::collections::BTreeMap;
use std::fmt;
use std::process::Command;
use std::time::{Duration, Instant};

use ecm_apiserver::FaultConfig;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::fault_mix::fault_mix;
use super::oracle::{Kind, Problem};
use super::process::EcmProcess;
use super::world::{Shape, World};

/// `--max-endpoints-per-slice` of the runs: small, so Services span slices.
pub(crate) const MAX_PER_SLICE: usize = 3;
/// Real time allowed to converge once the faults are off.
const QUIET_DEADLINE: Duration = Duration::from_secs(60);
/// No write for this long (and nothing to fix) counts as quiet.
const QUIET_FOR: Duration = Duration::from_millis(1200);

/// What a run does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// World size.
    pub(crate) shape: Shape,
    /// Churn operations.
    pub(crate) ops: usize,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            shape: Shape {
                services: 3,
                pods: 12,
                nodes: 3,
            },
            ops: 120,
        }
    }
}

/// The outcome of one seed.
#[derive(Debug)]
pub(crate) struct SeedReport {
    /// The seed.
    pub(crate) seed: u64,
    /// Churn operations made.
    pub(crate) ops: usize,
    /// Operations by name.
    pub(crate) op_counts: BTreeMap<&'static str, usize>,
    /// Faults fired.
    pub(crate) faults: u64,
    /// ecm restarts (SIGKILL then start).
    pub(crate) restarts: usize,
    /// Time from faults off to quiescence.
    pub(crate) converged_in: Option<Duration>,
    /// What still differed at the end.
    pub(crate) problems: Vec<Problem>,
    /// Lines of ecm's stderr telling of a panic.
    pub(crate) panics: Vec<String>,
    /// Whether `ecm shadow --once` found nothing to change.
    pub(crate) shadow_clean: bool,
    /// The last lines of ecm's stderr, when the run failed.
    pub(crate) log_tail: String,
}

impl SeedReport {
    /// Whether nothing went wrong.
    pub(crate) fn ok(&self) -> bool {
        self.problems.is_empty() && self.panics.is_empty() && self.shadow_clean && self.converged_in.is_some()
    }

    /// Problems of one kind.
    pub(crate) fn count(&self, kind: Kind) -> usize {
        self.problems.iter().filter(|p| p.kind == kind).count()
    }
}

impl fmt::Display for SeedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {:>4}  ops {:>3}  faults fired {:>4}  restarts {}  converged {:>6}  ",
            self.seed,
            self.ops,
            self.faults,
            self.restarts,
            self.converged_in
                .map_or_else(|| "never".to_owned(), |d| format!("{:.1}s", d.as_secs_f64())),
        )?;
        if self.ok() {
            return f.write_str("ok");
        }
        let counts: Vec<String> = Kind::ALL
            .iter()
            .map(|k| (k, self.count(*k)))
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{n} {k:?}"))
            .collect();
        write!(
            f,
            "FAILED ({}; {} panics; shadow {})",
            counts.join(", "),
            self.panics.len(),
            if self.shadow_clean { "clean" } else { "diverged" }
        )
    }
}

fn run_args() -> Vec<String> {
    ["run", "--leader-elect=false", "--max-endpoints-per-slice"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([MAX_PER_SLICE.to_string()])
        .collect()
}

/// Waits (at most a minute) until nothing is left to fix and nothing was
/// written for a while; returns how long it took, `None` if it never was.
pub(crate) async fn wait_quiet(world: &World) -> Option<Duration> {
    // Writes of the controllers' outputs (Lease renewals go on).
    let outputs = || {
        world
            .server
            .write_log()
            .iter()
            .filter(|w| w.resource == "endpoints" || w.resource == "endpointslices")
            .count()
    };
    let start = Instant::now();
    let (mut writes, mut since) = (outputs(), Instant::now());
    while start.elapsed() < QUIET_DEADLINE {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = outputs();
        if now != writes {
            (writes, since) = (now, Instant::now());
            continue;
        }
        if since.elapsed() >= QUIET_FOR && world.problems(MAX_PER_SLICE).is_empty() {
            return Some(start.elapsed());
        }
    }
    None
}

/// `ecm shadow --once` against the world: whether it finds nothing to
/// change but zones. (Upstream does not sync a Service again when only a
/// node's zone changes, so an endpoint may keep its node's former zone:
/// see the oracle; `ecm shadow` compares with the current one.)
pub(crate) fn shadow_clean(world: &World) -> bool {
    let out = Command::new(super::process::ecm_binary())
        .args([
            "shadow",
            "--once",
            "-o",
            "json",
            "--grace-period",
            "300ms",
            "--once-timeout",
            "30s",
        ])
        .args(["--max-endpoints-per-slice", &MAX_PER_SLICE.to_string()])
        .args(["--health-probe-bind-address", "0", "--metrics-bind-address", "0"])
        .arg("--kubeconfig")
        .arg(&world.kubeconfig)
        .output()
        .expect("ecm shadow runs");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let Some(divergences) = report["divergences"].as_array() else {
        eprintln!("ecm shadow --once: no report ({})", out.status);
        return false;
    };
    let real: Vec<&serde_json::Value> = divergences.iter().filter(|d| d["field"] != "zone").collect();
    if !real.is_empty() {
        eprintln!(
            "ecm shadow --once: {}",
            serde_json::to_string_pretty(&real).unwrap_or_default()
        );
    }
    real.is_empty()
}

/// Runs `seed` with `plan`.
pub(crate) async fn run_seed(seed: u64, plan: Plan) -> SeedReport {
    let mut world = World::start("chaos", seed, plan.shape).await;
    world.server.set_faults(fault_mix(seed));
    let args = run_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let spawn = |world: &World, n: usize| {
        EcmProcess::spawn(&args, &world.kubeconfig, &[], world.dir.join(format!("ecm-{n}.stderr")))
    };
    let mut processes = vec![spawn(&world, 0)];
    let mut pause = StdRng::seed_from_u64(seed.wrapping_mul(31));
    let mut op_counts = BTreeMap::new();
    let kill_at = plan.ops / 2;
    for op in 0..plan.ops {
        if op == kill_at {
            if let Some(ecm) = processes.last_mut() {
                ecm.kill();
            }
            processes.push(spawn(&world, processes.len()));
        }
        *op_counts.entry(world.churn_once().await).or_insert(0) += 1;
        tokio::time::sleep(Duration::from_millis(pause.random_range(2..40))).await;
    }
    world.server.set_faults(FaultConfig::default());
    let faults = world.server.faults_fired();

    let converged_in = wait_quiet(&world).await;
    let problems = world.problems(MAX_PER_SLICE);
    let shadow_clean = shadow_clean(&world);
    let panics: Vec<String> = processes.iter().flat_map(EcmProcess::panics).collect();
    let restarts = processes.len() - 1;
    let log_tail = processes.last().map(|p| {
        let log = p.stderr();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    });
    drop(processes);
    if !(problems.is_empty() && panics.is_empty() && shadow_clean && converged_in.is_some()) {
        // Keep ecm's logs for diagnosis.
        let kept = std::env::temp_dir().join(format!("ecm-chaos-failed-seed-{seed}"));
        let _ = std::fs::remove_dir_all(&kept);
        if std::fs::rename(&world.dir, &kept).is_ok() {
            println!("    ecm logs kept in {}", kept.display());
        }
    }
    let report = SeedReport {
        seed,
        ops: plan.ops,
        op_counts,
        faults,
        restarts,
        converged_in,
        problems,
        panics,
        shadow_clean,
        log_tail: log_tail.unwrap_or_default(),
    };
    world.stop().await;
    report
}

/// Runs `seeds` one after the other, printing one line each and a summary;
/// returns the reports.
pub(crate) async fn run_seeds(seeds: impl IntoIterator<Item = u64>, plan: Plan) -> Vec<SeedReport> {
    let started = Instant::now();
    let mut reports = Vec::new();
    for seed in seeds {
        let report = run_seed(seed, plan).await;
        println!("{report}");
        if !report.ok() {
            for problem in report.problems.iter().take(12) {
                println!("    {problem}");
            }
            for panic in &report.panics {
                println!("    {panic}");
            }
            println!("    ecm stderr (last lines):\n{}", report.log_tail);
            println!("    reproduce: cargo xtask chaos --seed {seed}");
        }
        reports.push(report);
    }
    let failed: Vec<u64> = reports.iter().filter(|r| !r.ok()).map(|r| r.seed).collect();
    let total = |f: &dyn Fn(&SeedReport) -> u64| reports.iter().map(f).sum::<u64>();
    let slowest = reports.iter().filter_map(|r| r.converged_in).max().unwrap_or_default();
    let mut ops = BTreeMap::new();
    for r in &reports {
        for (op, n) in &r.op_counts {
            *ops.entry(*op).or_insert(0) += n;
        }
    }
    println!(
        "chaos: {} seeds, {} ok, {} failed {:?}; {} ops, {} faults fired, {} restarts; lost {}, stale {}, duplicate {}, wrong {}, oversize {}, orphan {}; {} panics; {} shadow divergences; slowest convergence {:.1}s; {:.0}s in all",
        reports.len(),
        reports.len() - failed.len(),
        failed.len(),
        failed,
        total(&|r| r.ops as u64),
        total(&|r| r.faults),
        total(&|r| r.restarts as u64),
        total(&|r| r.count(Kind::Lost) as u64),
        total(&|r| r.count(Kind::Stale) as u64),
        total(&|r| r.count(Kind::Duplicate) as u64),
        total(&|r| r.count(Kind::Wrong) as u64),
        total(&|r| r.count(Kind::Oversize) as u64),
        total(&|r| r.count(Kind::Orphan) as u64),
        total(&|r| r.panics.len() as u64),
        reports.iter().filter(|r| !r.shadow_clean).count(),
        slowest.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    println!("chaos: churn operations {ops:?}");
    reports
}
