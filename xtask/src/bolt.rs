//! The last step of `cargo xtask pgo`: BOLT, LLVM's post-link optimizer,
//! lays out the profile-guided binary's machine code by measured use.
//!
//! A profile-guided build orders code within what the compiler sees; BOLT
//! sees the linked program, so it can put the few hundred kilobytes that a
//! pod change runs next to each other across crates, split the cold half
//! of every hot function away, and fold identical functions. ecm wakes for
//! every watch event onto caches that other processes used in between
//! (docs/benchmarks.md, "Where the rest of a change's CPU goes"), so how
//! many distinct cache lines a change's code touches is much of what it
//! costs.
//!
//! 1. The profile-guided build is linked with `--emit-relocs`, which BOLT
//!    needs to move functions ([`RELOCS_FLAG`]);
//! 2. `llvm-bolt -instrument` writes an instrumented copy into
//!    `<target>/pgo/bolt/`;
//! 3. the same training as the profile-guided build runs it
//!    ([`crate::training::TRAINING`]); every `ecm` process writes its counts at
//!    exit, and `merge-fdata` merges them into
//!    `<target>/pgo/bolt/<hash>.fdata`, named by the profile-guided binary
//!    it was trained on (a changed binary trains anew; an unchanged one
//!    reuses it);
//! 4. `llvm-bolt` writes the optimized binary ([`OPTIMIZE_FLAGS`]).
//!
//! The tools come from LLVM's BOLT package (Debian and Ubuntu: `bolt-19`
//! and `libbolt-19-dev`, or any later version). [`tools`] looks for them
//! in `$LLVM_BOLT` (the path of `llvm-bolt`), on `PATH` and under
//! `/usr/lib/llvm-*`, and installs the newest Debian package the machine's
//! `apt` offers when they are missing and the build runs as root (the
//! image's build stage); otherwise, or with `ECM_BOLT=0`, `cargo xtask
//! pgo` says why and stops at the profile-guided binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};

use crate::run::{cmd, run, target_dir};

/// Linker flag added to the profile-guided build: keep the relocations in
/// the linked file, so that BOLT may move every function, not only the
/// ones it can patch in place.
pub(crate) const RELOCS_FLAG: &str = "-Clink-arg=-Wl,--emit-relocs";

/// `llvm-bolt` options of the optimizing run: blocks laid out by the
/// extended TSP model, functions ordered by call-chain clustering, cold
/// blocks split into a separate region (landing pads included), identical
/// functions folded, and the binary's GNU stack note kept (a binary without
/// one gets an executable stack). The debug information is left out: BOLT
/// 19 rewrites Rust's DWARF only in part (it drops attributes it does not
/// know), so the result keeps its symbols, and panics name functions, but
/// no line tables.
pub(crate) const OPTIMIZE_FLAGS: [&str; 7] = [
    "-reorder-blocks=ext-tsp",
    "-reorder-functions=cdsort",
    "-split-functions",
    "-split-all-cold",
    "-split-eh",
    "-icf=1",
    "-use-gnu-stack",
];

/// The BOLT programs and the instrumentation runtime they link in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tools {
    /// `llvm-bolt`.
    pub(crate) bolt: PathBuf,
    /// `merge-fdata`, from the same package.
    pub(crate) merge: PathBuf,
    /// `libbolt_rt_instr.a`, the runtime an instrumented binary carries
    /// (checked for; `llvm-bolt` finds it by itself).
    pub(crate) runtime: PathBuf,
}

/// Where the BOLT steps keep their files.
fn dir() -> PathBuf {
    target_dir().join("pgo/bolt")
}

/// The binary `cargo xtask pgo` ends with when BOLT ran.
pub(crate) fn binary() -> PathBuf {
    dir().join("ecm")
}

/// Whether BOLT was asked to be left out (`ECM_BOLT=0`).
pub(crate) fn disabled() -> bool {
    std::env::var_os("ECM_BOLT").is_some_and(|v| v == "0")
}

/// The BOLT tools of this machine, installed from `apt` when missing and
/// possible; `None` (with the reason printed) when there are none.
pub(crate) fn tools() -> Result<Option<Tools>> {
    if let Some(found) = find() {
        return Ok(Some(found));
    }
    let Some(install) = install_command() else {
        eprintln!(
            "bolt: llvm-bolt not found (set LLVM_BOLT, or install the package bolt-19 and \
             libbolt-19-dev or later); the binary stays profile-guided only"
        );
        return Ok(None);
    };
    eprintln!("bolt: llvm-bolt missing; installing it");
    run(install)?;
    let found = find();
    ensure!(found.is_some(), "llvm-bolt is still missing after installing it");
    Ok(found)
}

/// Finds `llvm-bolt`, `merge-fdata` and the runtime: `$LLVM_BOLT`, then
/// `PATH` (`llvm-bolt` or the newest `llvm-bolt-<version>`), then the
/// newest `/usr/lib/llvm-<version>/bin/llvm-bolt`.
fn find() -> Option<Tools> {
    if let Some(bolt) = std::env::var_os("LLVM_BOLT") {
        return tools_beside(&PathBuf::from(bolt));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = std::env::split_paths(&path).filter_map(|dir| {
        let names = list(&dir);
        newest(&names, "llvm-bolt").map(|name| dir.join(name))
    });
    let under_usr_lib =
        newest(&list(Path::new("/usr/lib")), "llvm").map(|llvm| Path::new("/usr/lib").join(llvm).join("bin/llvm-bolt"));
    on_path
        .chain(under_usr_lib)
        .filter(|bolt| bolt.exists())
        .find_map(|bolt| tools_beside(&bolt))
}

/// The file names in `dir` (none when it cannot be read).
fn list(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Of `names`, `stem` itself if present, else the `stem-<version>` of the
/// highest version.
fn newest<'a>(names: &'a [String], stem: &str) -> Option<&'a str> {
    if let Some(plain) = names.iter().find(|name| *name == stem) {
        return Some(plain);
    }
    names
        .iter()
        .filter_map(|name| {
            let version: u32 = name.strip_prefix(stem)?.strip_prefix('-')?.parse().ok()?;
            Some((version, name.as_str()))
        })
        .max()
        .map(|(_, name)| name)
}

/// `merge-fdata` and the runtime belonging to `bolt`: `merge-fdata` with
/// the same version suffix in the same folder, the runtime in the LLVM
/// installation's `lib` folder (the real path of `bolt` followed, since
/// Debian links `/usr/bin/llvm-bolt-19` to `/usr/lib/llvm-19/bin`).
fn tools_beside(bolt: &Path) -> Option<Tools> {
    let bolt = std::fs::canonicalize(bolt).ok()?;
    let bin = bolt.parent()?;
    let suffix = bolt.file_name()?.to_str()?.strip_prefix("llvm-bolt")?;
    let merge = bin.join(format!("merge-fdata{suffix}"));
    let runtime = bin.parent()?.join("lib/libbolt_rt_instr.a");
    (merge.exists() && runtime.exists()).then_some(Tools { bolt, merge, runtime })
}

/// `apt-get install` of the newest BOLT packages `apt` knows, when running
/// as root on a machine with `apt`; `None` otherwise.
fn install_command() -> Option<Command> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    let search = Command::new("apt-cache")
        .args(["search", "--names-only", "^bolt-[0-9]+$"])
        .output()
        .ok()?;
    let names: Vec<String> = String::from_utf8_lossy(&search.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect();
    let package = newest(&names, "bolt")?;
    let version = package.strip_prefix("bolt-")?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "--yes", "--no-install-recommends", package])
        .arg(format!("libbolt-{version}-dev"))
        .env("DEBIAN_FRONTEND", "noninteractive");
    Some(install)
}

/// The instrumenting run: `input` copied to `output` with counters, which
/// every process writes to `<profile>.<pid>.fdata` at exit. `llvm-bolt`
/// finds its runtime in its installation's `lib` folder by itself (it
/// reads `--runtime-instrumentation-lib` relative to that folder, even an
/// absolute path), which is why [`Tools::bolt`] is the real path.
fn instrument_command(tools: &Tools, input: &Path, output: &Path, profile: &Path) -> Command {
    let mut command = Command::new(&tools.bolt);
    command
        .arg(input)
        .arg("-instrument")
        .arg(format!("--instrumentation-file={}", profile.display()))
        .arg("--instrumentation-file-append-pid")
        .arg("-o")
        .arg(output);
    command
}

/// The optimizing run: `input` laid out by `profile` into `output`.
fn optimize_command(tools: &Tools, input: &Path, output: &Path, profile: &Path) -> Command {
    let mut command = Command::new(&tools.bolt);
    command
        .arg(input)
        .arg("-o")
        .arg(output)
        .arg(format!("-data={}", profile.display()))
        .args(OPTIMIZE_FLAGS);
    command
}

/// The counts files the instrumented runs wrote for `profile`.
fn counts(profile: &Path) -> Result<Vec<PathBuf>> {
    let dir = profile.parent().context("a profile path has a folder")?;
    let stem = profile
        .file_name()
        .and_then(|n| n.to_str())
        .context("a profile path has a name")?;
    let mut found: Vec<PathBuf> = list(dir)
        .into_iter()
        .filter(|name| {
            name.starts_with(&format!("{stem}.")) && Path::new(name).extension().is_some_and(|ext| ext == "fdata")
        })
        .map(|name| dir.join(name))
        .collect();
    found.sort();
    Ok(found)
}

/// Where the profile trained on the binary of content `bytes` is kept.
fn profile_for(bytes: &[u8]) -> PathBuf {
    use std::hash::{DefaultHasher, Hasher};
    let mut hasher = DefaultHasher::new();
    hasher.write(bytes);
    dir().join(format!("{:016x}.fdata", hasher.finish()))
}

/// Lays out `input` (the profile-guided binary) with BOLT, training first
/// unless a profile of exactly this binary exists; returns [`binary`].
pub(crate) fn optimize(tools: &Tools, input: &Path) -> Result<PathBuf> {
    let dir = dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let bytes = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let profile = profile_for(&bytes);
    drop(bytes);
    if profile.exists() {
        eprintln!("bolt: reusing {} (trained on this very binary)", profile.display());
    } else {
        train(tools, input, &profile)?;
    }
    let output = binary();
    run(optimize_command(tools, input, &output, &profile))?;
    println!("bolt: profile {}", profile.display());
    println!("bolt: binary {}", output.display());
    Ok(output)
}

/// Instruments `input`, runs the training on it, and merges its counts
/// into `profile`.
fn train(tools: &Tools, input: &Path, profile: &Path) -> Result<()> {
    let instrumented = dir().join("ecm.instrumented");
    let raw = dir().join("counts");
    for old in counts(&raw)? {
        std::fs::remove_file(&old).with_context(|| format!("cannot remove {}", old.display()))?;
    }
    run(instrument_command(tools, input, &instrumented, &raw))?;
    let bench = crate::scale::build()?;
    let results = dir().join("training.jsonl");
    if results.exists() {
        std::fs::remove_file(&results).with_context(|| format!("cannot remove {}", results.display()))?;
    }
    for training in crate::training::TRAINING {
        run(crate::training::training_command(
            &bench,
            &instrumented,
            training,
            &results,
        ))?;
    }
    let found = counts(&raw)?;
    ensure!(
        !found.is_empty(),
        "the training wrote no BOLT counts next to {}",
        raw.display()
    );
    let merged = std::fs::File::create(profile).with_context(|| format!("cannot create {}", profile.display()))?;
    let mut merge = cmd(&tools.merge.to_string_lossy(), &[]);
    merge.args(&found).stdout(merged);
    run(merge)?;
    for old in found {
        std::fs::remove_file(&old).with_context(|| format!("cannot remove {}", old.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::display;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_plain_name_wins_then_the_highest_version() {
        let both = names(&["llvm-bolt-17", "llvm-bolt", "llvm-bolt-19"]);
        assert_eq!(newest(&both, "llvm-bolt"), Some("llvm-bolt"));
        let versions = names(&["llvm-bolt-9", "llvm-bolt-19", "llvm-bolt-heatmap-19", "llvm-boltdiff"]);
        assert_eq!(newest(&versions, "llvm-bolt"), Some("llvm-bolt-19"));
        let dirs = names(&["llvm-14", "llvm-19", "llvm-9", "llvm-tools"]);
        assert_eq!(newest(&dirs, "llvm"), Some("llvm-19"));
        assert_eq!(newest(&names(&["clang-19"]), "llvm-bolt"), None);
    }

    #[test]
    fn the_tools_of_one_installation_belong_together() {
        let root = std::env::temp_dir().join(format!("ecm-xtask-bolt-{}", std::process::id()));
        let bin = root.join("llvm-19/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(root.join("llvm-19/lib")).unwrap();
        std::fs::write(bin.join("llvm-bolt-19"), b"").unwrap();
        let bolt = bin.join("llvm-bolt-19");
        // No merge-fdata-19 or runtime yet: not a usable installation.
        assert_eq!(tools_beside(&bolt), None);
        std::fs::write(bin.join("merge-fdata-19"), b"").unwrap();
        std::fs::write(root.join("llvm-19/lib/libbolt_rt_instr.a"), b"").unwrap();
        let found = tools_beside(&bolt).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(found.merge, root.join("llvm-19/bin/merge-fdata-19"));
        assert_eq!(found.runtime, root.join("llvm-19/lib/libbolt_rt_instr.a"));
    }

    #[test]
    fn the_commands_name_the_runtime_the_profile_and_the_layout() {
        let tools = Tools {
            bolt: PathBuf::from("/l/bin/llvm-bolt"),
            merge: PathBuf::from("/l/bin/merge-fdata"),
            runtime: PathBuf::from("/l/lib/libbolt_rt_instr.a"),
        };
        let instrument = display(&instrument_command(
            &tools,
            Path::new("/t/ecm"),
            Path::new("/t/ecm.i"),
            Path::new("/t/counts"),
        ));
        assert_eq!(
            instrument,
            "/l/bin/llvm-bolt /t/ecm -instrument --instrumentation-file=/t/counts \
             --instrumentation-file-append-pid -o /t/ecm.i"
        );
        let optimize = display(&optimize_command(
            &tools,
            Path::new("/t/ecm"),
            Path::new("/t/ecm.b"),
            Path::new("/t/p.fdata"),
        ));
        assert!(optimize.starts_with("/l/bin/llvm-bolt /t/ecm -o /t/ecm.b -data=/t/p.fdata -reorder-blocks=ext-tsp"));
        assert!(optimize.ends_with("-icf=1 -use-gnu-stack"), "{optimize}");
    }

    #[test]
    fn only_the_counts_of_the_profile_are_merged() {
        let dir = std::env::temp_dir().join(format!("ecm-xtask-bolt-counts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            "counts.12.fdata",
            "counts.3.fdata",
            "counts",
            "other.4.fdata",
            "counts.5.txt",
        ] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let found = counts(&dir.join("counts")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found, [dir.join("counts.12.fdata"), dir.join("counts.3.fdata")]);
    }

    #[test]
    fn a_profile_is_named_by_the_binary_it_was_trained_on() {
        assert_eq!(profile_for(b"one"), profile_for(b"one"));
        assert_ne!(profile_for(b"one"), profile_for(b"two"));
        assert!(profile_for(b"one").starts_with(dir()));
    }
}
