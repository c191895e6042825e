//! `cargo xtask bench scale`: `crates/ecm/benches/scale` at the sizes of
//! docs/benchmarks.md, each run in its own process (ecm-apiserver in the
//! bench, `ecm run` as a child), then the collected results as a markdown
//! table and a PNG plot of ecm's CPU per pod change against the pods in a
//! namespace.
//!
//! The bench is built once and its executable run per size, so the sizes
//! run back to back without waiting for cargo's build lock in between.
//! Each run appends one JSON object to `<target>/bench-scale/results.jsonl`
//! (emptied first); [`results`] reads it, [`table`] renders it, [`plot`]
//! draws it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::run::{cmd, repo_root, run, target_dir};

pub(crate) mod plot;
pub(crate) mod results;
pub(crate) mod table;

/// One run: Services of some pods each, over some namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Size {
    /// Services.
    pub(crate) services: usize,
    /// Pods per Service.
    pub(crate) pods_per_service: usize,
    /// Namespaces they are spread over.
    pub(crate) namespaces: usize,
}

const fn size(services: usize, pods_per_service: usize, namespaces: usize) -> Size {
    Size {
        services,
        pods_per_service,
        namespaces,
    }
}

/// The published sizes: Services of 10 pods, 3 000, 30 000 and 100 000
/// pods in one namespace, 30 000 spread over 30 namespaces (1 000 per
/// namespace); and 30 000 pods in 30 large Services of 1 000.
pub(crate) const SIZES: [Size; 5] = [
    size(300, 10, 1),
    size(3_000, 10, 1),
    size(10_000, 10, 1),
    size(3_000, 10, 30),
    size(30, 1_000, 1),
];

/// `--quick`: 3 000 and 10 000 pods, short churn and idle windows.
pub(crate) const QUICK_SIZES: [Size; 2] = [size(300, 10, 1), size(1_000, 10, 1)];

/// The results file the bench appends to.
pub(crate) fn results_file() -> PathBuf {
    target_dir().join("bench-scale/results.jsonl")
}

/// Where the plot goes: committed under docs/img for a full run, beside
/// the results for `--quick`.
pub(crate) fn plot_file(quick: bool) -> PathBuf {
    if quick {
        target_dir().join("bench-scale/scale-cpu-per-change.png")
    } else {
        repo_root().join("docs/img/scale-cpu-per-change.png")
    }
}

/// The command that builds the bench (and the ecm binary it spawns) and
/// names its executable in cargo's JSON messages.
pub(crate) fn build_command() -> Command {
    cmd(
        "cargo",
        &[
            "bench",
            "--package",
            "ecm",
            "--bench",
            "scale",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ],
    )
}

/// The bench executable in cargo's JSON messages (the artifact of target `scale`).
pub(crate) fn executable(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "scale")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

/// Builds the bench once, so the sizes run back to back without cargo
/// (and its build lock) in between; returns the executable.
pub(crate) fn build() -> Result<PathBuf> {
    let mut command = build_command();
    eprintln!("+ {}", crate::run::display(&command));
    let output = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("could not start cargo")?;
    anyhow::ensure!(
        output.status.success(),
        "building the scale bench failed ({})",
        output.status
    );
    executable(&String::from_utf8_lossy(&output.stdout)).context("cargo named no executable for the scale bench")
}

/// The bench run of one size.
pub(crate) fn command(bench: &Path, size: Size, quick: bool, results: &Path) -> Command {
    let mut command = Command::new(bench);
    command.current_dir(repo_root().join("crates/ecm"));
    command
        .arg("--services")
        .arg(size.services.to_string())
        .arg("--pods-per-service")
        .arg(size.pods_per_service.to_string())
        .arg("--namespaces")
        .arg(size.namespaces.to_string())
        .arg("--results")
        .arg(results);
    if quick {
        command.arg("--quick");
    }
    command
}

/// Runs every size, then prints the table and draws the plot. With `ecm`,
/// the bench spawns that binary (the profile-guided build of
/// [`crate::pgo`]) instead of the plain release build.
pub(crate) fn scale(quick: bool, ecm: Option<&Path>) -> Result<()> {
    let file = results_file();
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if file.exists() {
        std::fs::remove_file(&file).with_context(|| format!("cannot remove {}", file.display()))?;
    }
    let sizes: &[Size] = if quick { &QUICK_SIZES } else { &SIZES };
    let bench = build()?;
    for size in sizes {
        let mut command = command(&bench, *size, quick, &file);
        if let Some(ecm) = ecm {
            command.arg("--ecm").arg(ecm);
        }
        run(command)?;
    }
    report(&file, &plot_file(quick))
}

/// Prints the table of the runs in `results` and plots them into `png`.
pub(crate) fn report(results: &Path, png: &Path) -> Result<()> {
    let text = std::fs::read_to_string(results).with_context(|| format!("cannot read {}", results.display()))?;
    let runs = results::parse(&text)?;
    println!("{}", table::markdown(&runs));
    if let Some(dir) = png.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    plot::draw(&runs, png)?;
    println!("plot: {}", png.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::display;

    #[test]
    fn sizes_are_the_issue_s_and_quick_is_small() {
        let pods: Vec<(usize, usize, usize)> = SIZES
            .iter()
            .map(|s| (s.services * s.pods_per_service, s.pods_per_service, s.namespaces))
            .collect();
        assert_eq!(
            pods,
            [
                (3_000, 10, 1),
                (30_000, 10, 1),
                (100_000, 10, 1),
                (30_000, 10, 30),
                (30_000, 1_000, 1)
            ]
        );
        assert!(QUICK_SIZES.iter().all(|s| s.services * s.pods_per_service <= 10_000));
    }

    #[test]
    fn one_bench_process_per_size() {
        let shown = display(&command(Path::new("/t/scale-1"), SIZES[3], true, Path::new("r.jsonl")));
        assert_eq!(
            shown,
            "/t/scale-1 --services 3000 --pods-per-service 10 --namespaces 30 --results r.jsonl --quick"
        );
        assert_eq!(
            display(&build_command()),
            "cargo bench --package ecm --bench scale --no-run --message-format=json-render-diagnostics"
        );
    }

    #[test]
    fn the_executable_is_found_in_cargo_s_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"name":"ecm"},"executable":"/t/release/ecm"}"#,
            "\n",
            "not json\n",
            r#"{"reason":"compiler-artifact","target":{"name":"scale"},"executable":"/t/release/deps/scale-1"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(executable(messages), Some(PathBuf::from("/t/release/deps/scale-1")));
        assert_eq!(executable("{}"), None);
    }
}
