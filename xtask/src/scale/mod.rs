//! `cargo xtask bench scale`: `crates/ecm/benches/scale` at the sizes of
//! docs/benchmarks.md, each run in its own process (ecm-apiserver in the
//! bench, `ecm run` as a child), then the collected results as a markdown
//! table and a PNG plot of ecm's CPU per pod change against the pods in a
//! namespace.
//!
//! The bench appends one JSON object per run to
//! `<target>/bench-scale/results.jsonl` (emptied first); [`results`] reads
//! it, [`table`] renders it, [`plot`] draws it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::run::{cmd, repo_root, run, target_dir};

pub(crate) mod plot;
pub(crate) mod results;
pub(crate) mod table;

/// One run: Services of 10 pods, over some namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Size {
    /// Services (10 pods each).
    pub(crate) services: usize,
    /// Namespaces they are spread over.
    pub(crate) namespaces: usize,
}

/// The published sizes: 3 000, 30 000 and 100 000 pods in one namespace,
/// and 30 000 spread over 30 namespaces (1 000 per namespace).
pub(crate) const SIZES: [Size; 4] = [
    Size {
        services: 300,
        namespaces: 1,
    },
    Size {
        services: 3_000,
        namespaces: 1,
    },
    Size {
        services: 10_000,
        namespaces: 1,
    },
    Size {
        services: 3_000,
        namespaces: 30,
    },
];

/// `--quick`: 3 000 and 10 000 pods, short churn and idle windows.
pub(crate) const QUICK_SIZES: [Size; 2] = [
    Size {
        services: 300,
        namespaces: 1,
    },
    Size {
        services: 1_000,
        namespaces: 1,
    },
];

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

/// The bench command of one size.
pub(crate) fn command(size: Size, quick: bool, results: &Path) -> Command {
    let mut command = cmd("cargo", &["bench", "--package", "ecm", "--bench", "scale", "--"]);
    command
        .arg("--services")
        .arg(size.services.to_string())
        .arg("--namespaces")
        .arg(size.namespaces.to_string())
        .arg("--results")
        .arg(results);
    if quick {
        command.arg("--quick");
    }
    command
}

/// Runs every size, then prints the table and draws the plot.
pub(crate) fn scale(quick: bool) -> Result<()> {
    let file = results_file();
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if file.exists() {
        std::fs::remove_file(&file).with_context(|| format!("cannot remove {}", file.display()))?;
    }
    let sizes: &[Size] = if quick { &QUICK_SIZES } else { &SIZES };
    for size in sizes {
        run(command(*size, quick, &file))?;
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
        let pods: Vec<(usize, usize)> = SIZES.iter().map(|s| (s.services * 10, s.namespaces)).collect();
        assert_eq!(pods, [(3_000, 1), (30_000, 1), (100_000, 1), (30_000, 30)]);
        assert!(QUICK_SIZES.iter().all(|s| s.services * 10 <= 10_000));
    }

    #[test]
    fn one_bench_process_per_size() {
        let shown = display(&command(SIZES[3], true, Path::new("r.jsonl")));
        assert_eq!(
            shown,
            "cargo bench --package ecm --bench scale -- --services 3000 --namespaces 30 --results r.jsonl --quick"
        );
    }
}
