//! `cargo xtask pgo`: a profile-guided release build of the `ecm` binary.
//!
//! 1. `ecm` is built instrumented (`-Cprofile-generate`) into
//!    `<target>/pgo/instrumented`;
//! 2. the training workload runs it: the scale bench (`ecm run` as a child
//!    against ecm-apiserver: cold start, idle, pod churn, restart) at the
//!    sizes of [`TRAINING`] ([`crate::training`]), which are deliberately *not* the sizes
//!    `cargo xtask bench scale` publishes, so every published figure is
//!    measured out of sample;
//! 3. the profiles are merged with the toolchain's `llvm-profdata` (the
//!    rustup component `llvm-tools`, added when missing) into
//!    `<target>/pgo/ecm-<hash>.profdata` (named by its content, so that a
//!    new profile rebuilds the next step);
//! 4. `ecm` is built again with `-Cprofile-use` into `<target>/pgo/optimized`
//!    (linked with the relocations BOLT needs);
//! 5. BOLT lays that binary out by the same training ([`crate::bolt`]), when
//!    its tools are there (`ECM_BOLT=0` leaves it out).
//!
//! The result is copied to `<target>/pgo/ecm` ([`binary`]).
//!
//! Each build has its own target directory, so neither disturbs the plain
//! release build's cache. The image (deploy/Dockerfile) and `cargo xtask
//! bench scale --pgo` use this build; `cargo run --release` does not (it
//! is the same code, laid out without a profile).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::run::{cmd, display, run, target_dir};
use crate::training::{TRAINING, training_command};

/// Where the PGO builds and profiles live.
fn dir() -> PathBuf {
    target_dir().join("pgo")
}

/// The raw profiles the instrumented binary writes.
fn raw_dir() -> PathBuf {
    dir().join("profraw")
}

/// The `ecm` binary `cargo xtask pgo` ends with: profile-guided, and laid
/// out by BOLT when it ran.
pub(crate) fn binary() -> PathBuf {
    dir().join("ecm")
}

/// The profile-guided build, before BOLT.
fn optimized_binary() -> PathBuf {
    dir().join("optimized/release/ecm")
}

/// `RUSTFLAGS` for a build: the caller's, then `extra`.
fn rustflags(existing: Option<OsString>, extra: &str) -> OsString {
    match existing.filter(|flags| !flags.is_empty()) {
        Some(mut flags) => {
            flags.push(" ");
            flags.push(extra);
            flags
        }
        None => OsString::from(extra),
    }
}

/// `cargo build --release -p ecm` into `<target>/pgo/<name>` with `flag`
/// added to `RUSTFLAGS`.
pub(crate) fn build_command(name: &str, flag: &str) -> Command {
    let target = dir().join(name);
    let mut command = cmd(
        "cargo",
        &["build", "--release", "--locked", "--package", "ecm", "--bin", "ecm"],
    );
    command.arg("--target-dir").arg(target);
    command.env("RUSTFLAGS", rustflags(std::env::var_os("RUSTFLAGS"), flag));
    command
}

/// The toolchain's `llvm-profdata` (rustup component `llvm-tools`), added
/// with rustup when missing.
fn llvm_profdata() -> Result<PathBuf> {
    let sysroot = output(cmd("rustc", &["--print", "sysroot"]))?;
    let host = output(cmd("rustc", &["--print", "host-tuple"]))?;
    let tool = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(host.trim())
        .join("bin/llvm-profdata");
    if !tool.exists() {
        eprintln!("pgo: llvm-profdata missing; adding the rustup component llvm-tools");
        run(cmd("rustup", &["component", "add", "llvm-tools"]))
            .context("llvm-profdata comes with the rustup component llvm-tools, which could not be added")?;
    }
    ensure!(tool.exists(), "{} is missing after adding llvm-tools", tool.display());
    Ok(tool)
}

/// Runs `command` and returns its standard output.
fn output(mut command: Command) -> Result<String> {
    let shown = display(&command);
    let out = command.output().with_context(|| format!("could not start `{shown}`"))?;
    if !out.status.success() {
        bail!("`{shown}` failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The raw profiles in `dir`.
fn raw_profiles(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "profraw") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// Builds, trains and rebuilds `ecm`; returns the profile-guided binary.
pub(crate) fn pgo() -> Result<PathBuf> {
    let profdata = llvm_profdata()?;
    let raw = raw_dir();
    run(build_command(
        "instrumented",
        &format!("-Cprofile-generate={}", raw.display()),
    ))?;
    // Build scripts and proc macros of the instrumented build wrote
    // profiles too: only the training's are wanted.
    if raw.exists() {
        std::fs::remove_dir_all(&raw).with_context(|| format!("cannot empty {}", raw.display()))?;
    }
    std::fs::create_dir_all(&raw).with_context(|| format!("cannot create {}", raw.display()))?;

    let bench = crate::scale::build()?;
    let instrumented = dir().join("instrumented/release/ecm");
    let results = dir().join("training.jsonl");
    if results.exists() {
        std::fs::remove_file(&results).with_context(|| format!("cannot remove {}", results.display()))?;
    }
    for training in TRAINING {
        run(training_command(&bench, &instrumented, training, &results))?;
    }

    let profiles = raw_profiles(&raw)?;
    ensure!(
        !profiles.is_empty(),
        "the training wrote no profile into {}",
        raw.display()
    );
    let merged = dir().join("merged.profdata");
    let mut merge = Command::new(profdata);
    merge.arg("merge").arg("-o").arg(&merged).args(&profiles);
    run(merge)?;
    // Cargo sees RUSTFLAGS, not the profile's content: a new profile gets
    // a new name, so the optimized build cannot stay on an old one.
    let bytes = std::fs::read(&merged).with_context(|| format!("cannot read {}", merged.display()))?;
    let named = profile_named(&bytes);
    std::fs::rename(&merged, &named).with_context(|| format!("cannot rename to {}", named.display()))?;
    std::fs::write(latest(), named.as_os_str().as_encoded_bytes())
        .with_context(|| format!("cannot write {}", latest().display()))?;
    optimized(&named)
}

/// The profile-guided build with the last trained profile, training first
/// when there is none (what `cargo xtask bench scale --pgo` uses): cargo
/// rebuilds it when the code changed since, on the same profile.
pub(crate) fn reuse_or_train() -> Result<PathBuf> {
    match std::fs::read(latest()) {
        Ok(name) if Path::new(&*String::from_utf8_lossy(&name)).exists() => {
            let profile = PathBuf::from(String::from_utf8_lossy(&name).into_owned());
            eprintln!("pgo: reusing {} (`cargo xtask pgo` trains anew)", profile.display());
            optimized(&profile)
        }
        _ => pgo(),
    }
}

/// Builds `ecm` with `profile`, lays it out with BOLT when its tools are
/// there, and copies the result to [`binary`], which it returns.
fn optimized(profile: &Path) -> Result<PathBuf> {
    run(build_command(
        "optimized",
        &format!("-Cprofile-use={} {}", profile.display(), crate::bolt::RELOCS_FLAG),
    ))
    .with_context(|| {
        format!(
            "the build with {} failed; if the toolchain changed since it was trained, `cargo xtask pgo` trains anew",
            profile.display()
        )
    })?;
    let built = optimized_binary();
    ensure!(built.exists(), "{} was not built", built.display());
    println!("pgo: profile {}", profile.display());
    let tools = if crate::bolt::disabled() {
        eprintln!("bolt: left out (ECM_BOLT=0)");
        None
    } else {
        crate::bolt::tools()?
    };
    let last = match tools {
        Some(tools) => crate::bolt::optimize(&tools, &built)?,
        None => built,
    };
    let result = binary();
    // A fresh file, not an overwrite: a running ecm may be executing the old one.
    if result.exists() {
        std::fs::remove_file(&result).with_context(|| format!("cannot replace {}", result.display()))?;
    }
    std::fs::copy(&last, &result).with_context(|| format!("cannot copy {} to {}", last.display(), result.display()))?;
    println!("pgo: binary {}", result.display());
    Ok(result)
}

/// The file naming the last trained profile.
fn latest() -> PathBuf {
    dir().join("latest")
}

/// Where a merged profile of content `bytes` is kept: named by its hash.
fn profile_named(bytes: &[u8]) -> PathBuf {
    use std::hash::{DefaultHasher, Hasher};
    let mut hasher = DefaultHasher::new();
    hasher.write(bytes);
    dir().join(format!("ecm-{:016x}.profdata", hasher.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustflags_keep_the_caller_s() {
        assert_eq!(rustflags(None, "-Cx"), OsString::from("-Cx"));
        assert_eq!(rustflags(Some(OsString::new()), "-Cx"), OsString::from("-Cx"));
        assert_eq!(
            rustflags(Some(OsString::from("-Ctarget-cpu=native")), "-Cx"),
            OsString::from("-Ctarget-cpu=native -Cx")
        );
    }

    #[test]
    fn builds_go_to_their_own_target_directories() {
        let shown = display(&build_command("optimized", "-Cprofile-use=/p"));
        let target = dir().join("optimized");
        assert_eq!(
            shown,
            format!(
                "cargo build --release --locked --package ecm --bin ecm --target-dir {}",
                target.display()
            )
        );
        assert!(optimized_binary().starts_with(&target));
        assert!(binary().starts_with(dir()));
    }

    #[test]
    fn a_profile_is_named_by_its_content() {
        assert_eq!(profile_named(b"one"), profile_named(b"one"));
        assert_ne!(profile_named(b"one"), profile_named(b"two"));
        assert!(profile_named(b"one").starts_with(dir()));
    }

    #[test]
    fn only_raw_profiles_are_merged() {
        let dir = std::env::temp_dir().join(format!("ecm-xtask-pgo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["b.profraw", "a.profraw", "notes.txt"] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let found = raw_profiles(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found, [dir.join("a.profraw"), dir.join("b.profraw")]);
    }
}
