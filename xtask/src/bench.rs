//! `cargo xtask bench`: every measurement `docs/benchmarks.md` reports, in
//! one run, so the ratios within it are comparable.
//!
//! | part | what it runs |
//! |---|---|
//! | `workqueue` | `cargo bench -p ecm-workqueue --bench throughput` (queue vs a bare mpsc channel) |
//! | `informer` | `cargo test --release -p ecm-informer --test memory -- --ignored` (bytes per cached pod) |
//! | `selectors` | `cargo bench -p ecm-informer --bench selector_index` (a Service's pods and a pod's Services, scan vs index) |
//! | `decode` | `cargo bench -p ecm-informer --bench decode` (watched objects as kube-apiserver sends them: decoded in full then stripped of `managedFields`, and without building them) |
//! | `apiserver` | `cargo bench -p ecm-apiserver --bench throughput` (writes/s in-process and over HTTP, watch fan-out) |
//! | `churn` | `cargo bench -p ecm-endpointslice --bench churn` (writes per change, reconcile time) |
//! | `latency` | `cargo bench -p ecm --bench latency`, then with `--unthrottled` (Service endpoints latency, as upstream's conformance test) |
//! | `simulate` | `ecm simulate` (release) on every conformance scenario, timed |
//! | `scale` | `cargo bench -p ecm --bench scale` at 3 000, 30 000 and 100 000 pods in one namespace (Services of 10 pods), 30 000 over 30 namespaces, and 30 Services of 1 000 pods (`ecm run` as a child process against ecm-apiserver: cold start, churn latency, CPU per change, restart, RSS); prints a table, draws `docs/img/scale-cpu-per-change.png` ([`crate::scale`]) |
//! | `rollout` | `cargo bench -p ecm --bench rollout`: a rollout restart of 300 replicas behind a Service in the embedded mode (EndpointSlice and Endpoints writes against the lower bound; the slices must end with exactly the new pods) |
//!
//! `--quick` shortens criterion's measurement, loads 10 000 pods instead
//! of 100 000 for the memory figures, and runs `scale` at 3 000 and 10 000
//! pods with 5-second windows (plot under `<target>/bench-scale/`): for
//! checking that everything runs, not for figures to publish.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

use crate::run::{cmd, display, repo_root, run, target_dir};

/// One part of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub(crate) enum Part {
    /// Work-queue throughput against a bare channel.
    Workqueue,
    /// Informer memory per cached pod.
    Informer,
    /// Selector lookups with and without the label index and the registry.
    Selectors,
    /// Decoding watched objects with and without building their managedFields.
    Decode,
    /// In-memory API server throughput.
    Apiserver,
    /// EndpointSlice churn: writes per change.
    Churn,
    /// Service-create-to-ready-endpoints latency, KCM's limits and none.
    Latency,
    /// `ecm simulate` wall time on the conformance scenarios.
    Simulate,
    /// ecm at scale: cold start, churn, restart and memory at 3k to 100k pods.
    Scale,
    /// A 300-replica rollout restart in the embedded mode: writes per rollout.
    Rollout,
}

impl Part {
    pub(crate) const ALL: [Part; 10] = [
        Part::Workqueue,
        Part::Informer,
        Part::Selectors,
        Part::Decode,
        Part::Apiserver,
        Part::Churn,
        Part::Latency,
        Part::Simulate,
        Part::Scale,
        Part::Rollout,
    ];
}

/// Criterion's flags for a quick run.
const CRITERION_QUICK: &[&str] = &["--warm-up-time", "1", "--measurement-time", "2", "--sample-size", "10"];

/// One criterion bench target (named, so that libtest harnesses, which
/// reject criterion's flags, are not run).
fn criterion(package: &str, bench: &str, quick: bool) -> Command {
    let mut command = cmd("cargo", &["bench", "--package", package, "--bench", bench]);
    if quick {
        command.arg("--").args(CRITERION_QUICK);
    }
    command
}

/// The commands of one part (`simulate` is timed in-process instead;
/// `scale` runs its sizes and then reports, in [`crate::scale`]).
pub(crate) fn commands(part: Part, quick: bool) -> Vec<Command> {
    match part {
        Part::Latency => {
            let throttled = cmd("cargo", &["bench", "--package", "ecm", "--bench", "latency"]);
            let mut unthrottled = cmd("cargo", &["bench", "--package", "ecm", "--bench", "latency"]);
            unthrottled.args(["--", "--unthrottled"]);
            vec![throttled, unthrottled]
        }
        other => command(other, quick).into_iter().collect(),
    }
}

/// The command of a part that is one command.
fn command(part: Part, quick: bool) -> Option<Command> {
    match part {
        Part::Workqueue => Some(criterion("ecm-workqueue", "throughput", quick)),
        Part::Selectors => Some(criterion("ecm-informer", "selector_index", quick)),
        Part::Decode => Some(criterion("ecm-informer", "decode", quick)),
        Part::Apiserver => Some(criterion("ecm-apiserver", "throughput", quick)),
        Part::Churn => Some(criterion("ecm-endpointslice", "churn", quick)),
        Part::Informer => {
            let mut command = cmd(
                "cargo",
                &[
                    "test",
                    "--release",
                    "--package",
                    "ecm-informer",
                    "--test",
                    "memory",
                    "--",
                    "--ignored",
                    "--nocapture",
                ],
            );
            if quick {
                command.env("ECM_MEMORY_PODS", "10000");
            }
            Some(command)
        }
        Part::Rollout => {
            let mut command = cmd("cargo", &["bench", "--package", "ecm", "--bench", "rollout"]);
            if quick {
                command.args(["--", "60"]);
            }
            Some(command)
        }
        Part::Simulate | Part::Latency | Part::Scale => None,
    }
}

/// Every scenario file under `dir`, recursively, in name order.
fn scenarios(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            found.extend(scenarios(&path)?);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// Times `ecm simulate` (release build) on every conformance scenario and
/// prints the slowest ones and the total.
fn simulate() -> Result<()> {
    let dir = repo_root().join("../shared/conformance/scenarios");
    if !dir.exists() {
        eprintln!("bench: {} not found; skipping simulate", dir.display());
        return Ok(());
    }
    run(cmd(
        "cargo",
        &["build", "--release", "--package", "ecm", "--bin", "ecm"],
    ))?;
    let ecm = target_dir().join("release/ecm");
    let mut timings = Vec::new();
    for scenario in scenarios(&dir)? {
        let mut command = Command::new(&ecm);
        command.arg("simulate").arg("-f").arg(&scenario);
        let started = Instant::now();
        let output = command
            .output()
            .with_context(|| format!("cannot run {}", display(&command)))?;
        let took = started.elapsed();
        if !output.status.success() {
            bail!(
                "{} failed: {}",
                scenario.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        timings.push((took, scenario));
    }
    let total: std::time::Duration = timings.iter().map(|(t, _)| *t).sum();
    timings.sort_by_key(|t| std::cmp::Reverse(t.0));
    println!(
        "simulate: {} scenarios in {:.2} s; slowest:",
        timings.len(),
        total.as_secs_f64()
    );
    for (took, scenario) in timings.iter().take(5) {
        let name = scenario.strip_prefix(&dir).unwrap_or(scenario);
        println!("  {:>7.3} s  {}", took.as_secs_f64(), name.display());
    }
    Ok(())
}

/// Runs `parts` (all when empty).
pub(crate) fn bench(parts: &[Part], quick: bool, pgo: bool) -> Result<()> {
    let mut parts = if parts.is_empty() {
        Part::ALL.to_vec()
    } else {
        parts.to_vec()
    };
    parts.sort();
    parts.dedup();
    for part in parts {
        eprintln!("bench: {part:?}");
        if part == Part::Simulate {
            simulate()?;
        }
        if part == Part::Scale {
            let ecm = if pgo { Some(crate::pgo::reuse_or_train()?) } else { None };
            crate::scale::scale(quick, ecm.as_deref())?;
        }
        for command in commands(part, quick) {
            run(command)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_other_part_but_simulate_and_scale_is_one_cargo_command() {
        let shown: Vec<Option<String>> = Part::ALL
            .iter()
            .filter(|p| **p != Part::Latency)
            .map(|p| command(*p, false).map(|c| display(&c)))
            .collect();
        assert_eq!(
            shown,
            [
                Some("cargo bench --package ecm-workqueue --bench throughput".to_owned()),
                Some("cargo test --release --package ecm-informer --test memory -- --ignored --nocapture".to_owned()),
                Some("cargo bench --package ecm-informer --bench selector_index".to_owned()),
                Some("cargo bench --package ecm-informer --bench decode".to_owned()),
                Some("cargo bench --package ecm-apiserver --bench throughput".to_owned()),
                Some("cargo bench --package ecm-endpointslice --bench churn".to_owned()),
                None,
                None,
                Some("cargo bench --package ecm --bench rollout".to_owned()),
            ]
        );
    }

    #[test]
    fn latency_runs_with_kcm_limits_then_without() {
        let shown: Vec<String> = commands(Part::Latency, false).iter().map(display).collect();
        assert_eq!(
            shown,
            [
                "cargo bench --package ecm --bench latency",
                "cargo bench --package ecm --bench latency -- --unthrottled"
            ]
        );
    }

    #[test]
    fn quick_shortens_criterion_and_the_pod_count() {
        let churn = command(Part::Churn, true).expect("a command");
        assert_eq!(
            display(&churn),
            "cargo bench --package ecm-endpointslice --bench churn -- --warm-up-time 1 --measurement-time 2 --sample-size 10"
        );
        let memory = command(Part::Informer, true).expect("a command");
        let pods = memory
            .get_envs()
            .find(|(k, _)| *k == "ECM_MEMORY_PODS")
            .and_then(|(_, v)| v);
        assert_eq!(pods, Some(std::ffi::OsStr::new("10000")));
    }

    #[test]
    fn scenarios_are_found_recursively_in_order() {
        let dir = repo_root().join("../shared/conformance/scenarios");
        if !dir.exists() {
            return;
        }
        let found = scenarios(&dir).expect("readable");
        assert!(found.len() >= 79, "{}", found.len());
        assert!(found.windows(2).all(|w| w[0] < w[1]));
    }
}
