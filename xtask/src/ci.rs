//! The CI steps and the test suite.

use anyhow::Result;

use crate::run::{cmd, run};

/// Whether this runs under CI (`CI=true`), which selects nextest's `ci` profile.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

/// The whole test suite: every crate's unit and integration tests through
/// nextest (which prints its summary line), then the doc tests, which nextest
/// does not run.
pub(crate) fn test() -> Result<()> {
    let profile = if in_ci() { "ci" } else { "default" };
    run(cmd(
        "cargo",
        &["nextest", "run", "--workspace", "--all-features", "--profile", profile],
    ))?;
    run(cmd("cargo", &["test", "--workspace", "--all-features", "--doc"]))?;
    Ok(())
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
