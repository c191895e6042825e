//! The CI steps and the test suite.

use anyhow::Result;

use crate::run::{cmd, repo_root, run, target_dir};

/// The conformance scenario folders of the controllers ecm implements.
const CONFORMANCE_SUITES: &[&str] = &["endpoints", "endpointslice", "mirroring"];

/// Whether this runs under CI (`CI=true`), which selects nextest's `ci` profile.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

/// The whole test suite: every crate's unit and integration tests through
/// nextest (which prints its summary line), the doc tests, which nextest
/// does not run, then the conformance scenarios.
pub(crate) fn test() -> Result<()> {
    module_cycles()?;
    let profile = if in_ci() { "ci" } else { "default" };
    run(cmd(
        "cargo",
        &["nextest", "run", "--workspace", "--all-features", "--profile", profile],
    ))?;
    run(cmd("cargo", &["test", "--workspace", "--all-features", "--doc"]))?;
    conformance()
}

/// Checks that no crate's modules import each other in a circle
/// (`xtask/scripts/module_cycles.py` on every `crates/*/src` and on xtask).
pub(crate) fn module_cycles() -> Result<()> {
    let root = repo_root();
    let script = root.join("xtask/scripts/module_cycles.py");
    let mut sources: Vec<_> = std::fs::read_dir(root.join("crates"))?
        .filter_map(|entry| entry.ok().map(|e| e.path().join("src")))
        .filter(|src| src.is_dir())
        .collect();
    sources.sort();
    sources.push(root.join("xtask/src"));
    for src in sources {
        let mut command = cmd("python3", &[]);
        command.arg(&script).arg(src);
        run(command)?;
    }
    Ok(())
}

/// Runs `../shared/conformance/check.py` on the scenarios of every
/// implemented controller, with the debug `ecm` binary.
pub(crate) fn conformance() -> Result<()> {
    let root = repo_root();
    let shared = root.join("../shared/conformance");
    let check = shared.join("check.py");
    if !check.exists() {
        eprintln!("conformance: {} not found, skipping the scenarios", check.display());
        return Ok(());
    }
    run(cmd("cargo", &["build", "--package", "ecm", "--bin", "ecm"]))?;
    let mut command = cmd("python3", &[]);
    command.arg(&check).arg("--ecm").arg(target_dir().join("debug/ecm"));
    for suite in CONFORMANCE_SUITES {
        command.arg(shared.join("scenarios").join(suite));
    }
    run(command)
}

/// Formatting, lints, docs, then the test suite: the steps `.ci/run` runs.
pub(crate) fn ci() -> Result<()> {
    run(cmd("cargo", &["fmt", "--all", "--", "--check"]))?;
    run(cmd(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ],
    ))?;
    let mut doc = cmd("cargo", &["doc", "--workspace", "--no-deps", "--all-features"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    run(doc)?;
    test()
}
