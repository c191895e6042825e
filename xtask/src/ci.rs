//! The CI steps and the test suite.

use anyhow::Result;

use std::ffi::OsString;

use crate::run::{cmd, repo_root, run, target_dir};
use crate::tools::{path_or_warn, with_path};

/// The conformance scenario folders of the controllers ecm implements.
const CONFORMANCE_SUITES: &[&str] = &["endpoints", "endpointslice", "mirroring"];

/// Whether this runs under CI (`CI=true`), which selects nextest's `ci` profile.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

/// The whole test suite: helm and kubectl installed (`cargo xtask tools`)
/// and put first on `PATH`, then every crate's unit and integration tests
/// through nextest (which prints its summary line), the doc tests, which
/// nextest does not run, then the conformance scenarios. Before them, the
/// module-cycle check and `pb-schema --check` (the committed protobuf
/// descriptors still match the `k8s-pb` and `k8s-openapi` in Cargo.lock).
/// Without the tools (no network) it says so and runs the rest; their
/// tests skip.
pub(crate) fn test() -> Result<()> {
    module_cycles()?;
    crate::pb_schema::pb_schema(true)?;
    let path = path_or_warn();
    let profile = if in_ci() { "ci" } else { "default" };
    run(with_path(
        cmd(
            "cargo",
            &["nextest", "run", "--workspace", "--all-features", "--profile", profile],
        ),
        path.as_ref(),
    ))?;
    run(with_path(
        cmd("cargo", &["test", "--workspace", "--all-features", "--doc"]),
        path.as_ref(),
    ))?;
    conformance(path.as_ref())
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
/// implemented controller, with the debug `ecm` binary and
/// `--incremental-syncs verify`, with `path` as `PATH` when given.
pub(crate) fn conformance(path: Option<&OsString>) -> Result<()> {
    let root = repo_root();
    let shared = root.join("../shared/conformance");
    let check = shared.join("check.py");
    if !check.exists() {
        eprintln!("conformance: {} not found, skipping the scenarios", check.display());
        return Ok(());
    }
    // The same package selection, features and targets as the nextest run
    // before it, so cargo resolves the same features and this is a no-op
    // that only links `target/debug/ecm` to the binary the integration tests
    // already built. `--package ecm --bin ecm` resolves fewer features
    // (no dev-dependencies, no other workspace members) and rebuilt most of
    // the dependency tree a second time: minutes and gigabytes of CI disk.
    run(with_path(
        cmd("cargo", &["build", "--workspace", "--all-features", "--tests"]),
        path,
    ))?;
    let mut command = with_path(cmd("python3", &[]), path);
    // Every incremental sync is checked against a full recompute; the debug
    // binary panics on a difference, which fails the scenario.
    command.env("ECM_INCREMENTAL_SYNCS", "verify");
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
