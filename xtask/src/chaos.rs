//! `cargo xtask chaos --seeds N` / `--seed S`: the seeded chaos convergence
//! runs of `crates/ecm/tests/chaos.rs` (its ignored test `chaos_seeds`),
//! with the `ecm` binary built once by cargo and run from a private copy
//! (`ECM_CHAOS_BIN`), so a rebuild in the same target folder during the
//! runs does not swap it. Prints one line per seed
//! (seed, churn operations, faults fired, restarts, result) and a summary;
//! a failing seed reproduces with `--seed`. See docs/reliability.md.

use anyhow::{Context, Result};

use crate::run::{cmd, run, target_dir};

/// What to run.
pub(crate) struct Options {
    /// Number of seeds, from `first`.
    pub(crate) seeds: u64,
    /// First seed.
    pub(crate) first: u64,
    /// One seed only (reproduce a failure).
    pub(crate) seed: Option<u64>,
}

/// Runs the seeds; fails when one does.
pub(crate) fn chaos(options: &Options) -> Result<()> {
    run(cmd("cargo", &["build", "--package", "ecm", "--bin", "ecm"]))?;
    let dir = target_dir().join("chaos");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let binary = dir.join(format!("ecm-{}", std::process::id()));
    let built = target_dir().join("debug").join("ecm");
    std::fs::copy(&built, &binary).with_context(|| format!("cannot copy {}", built.display()))?;
    let mut command = cmd(
        "cargo",
        &[
            "test",
            "--package",
            "ecm",
            "--test",
            "chaos",
            "--",
            "--ignored",
            "--exact",
            "chaos_seeds",
            "--nocapture",
        ],
    );
    command.env("ECM_CHAOS_BIN", &binary);
    match options.seed {
        Some(seed) => command.env("ECM_CHAOS_SEED", seed.to_string()),
        None => command
            .env("ECM_CHAOS_SEEDS", options.seeds.to_string())
            .env("ECM_CHAOS_FIRST", options.first.to_string()),
    };
    let result = run(command);
    let _ = std::fs::remove_file(&binary);
    result
}
