//! `cargo xtask fuzz`: the cargo-fuzz targets of `fuzz/`, one after
//! another, each for a fixed time, failing on the first crash.
//!
//! cargo-fuzz is installed (`cargo install --locked cargo-fuzz`, into the
//! normal cargo bin dir) when missing; the nightly toolchain must be there.
//! Targets are built without a sanitizer (the workspace forbids `unsafe`
//! code, so AddressSanitizer has little to find and halves the speed) and
//! with debug assertions, so integer overflows are crashes too. Each target
//! grows a working corpus under `<target>/fuzz/corpus/<target>`, seeded from
//! the committed `fuzz/corpus/<target>`, which stays as committed; each run
//! appends its figures to `<target>/fuzz/runs.tsv`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::run::{display, repo_root, run, target_dir};

/// The fuzz targets, in the order they run (the `[[bin]]`s of `fuzz/Cargo.toml`).
pub(crate) const TARGETS: [&str; 5] = [
    "labels_selector",
    "target_port",
    "apiserver_decode",
    "mirroring_endpoints",
    "informer_decode",
];

/// The figures of one run, from libFuzzer's output.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Figures {
    /// Inputs executed (`stat::number_of_executed_units`).
    pub(crate) execs: u64,
    /// Coverage counters hit (`cov:`), the last reported.
    pub(crate) cov: u64,
    /// Features (`ft:`), the last reported.
    pub(crate) features: u64,
    /// Inputs in the corpus (`corp:`), the last reported.
    pub(crate) corpus: u64,
}

impl Figures {
    /// Takes what a line of libFuzzer output tells.
    fn read(&mut self, line: &str) {
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            self.execs = n.trim().parse().unwrap_or(self.execs);
        }
        if line.starts_with('#') {
            let mut words = line.split_whitespace();
            while let Some(word) = words.next() {
                let Some(value) = words.clone().next() else { break };
                let number = || value.split('/').next().and_then(|n| n.parse().ok());
                match word {
                    "cov:" => self.cov = number().unwrap_or(self.cov),
                    "ft:" => self.features = number().unwrap_or(self.features),
                    "corp:" => self.corpus = number().unwrap_or(self.corpus),
                    _ => {}
                }
            }
        }
    }
}

fn fuzz_dir() -> PathBuf {
    repo_root().join("fuzz")
}

/// Installs cargo-fuzz when `cargo fuzz` does not run, and checks nightly.
fn ensure_cargo_fuzz() -> Result<()> {
    let works = |args: &[&str]| {
        Command::new("cargo")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !works(&["+nightly", "--version"]) {
        bail!("cargo fuzz needs the nightly toolchain: rustup toolchain install nightly");
    }
    if !works(&["fuzz", "--version"]) {
        eprintln!("installing cargo-fuzz");
        let mut install = Command::new("cargo");
        install.args(["install", "--locked", "cargo-fuzz"]);
        run(install)?;
    }
    Ok(())
}

/// The `cargo fuzz run` command of `target` for `seconds`.
fn run_command(target: &str, seconds: u64, work_corpus: &std::path::Path) -> Command {
    let mut command = Command::new("cargo");
    command
        .current_dir(fuzz_dir())
        .args([
            "+nightly",
            "fuzz",
            "run",
            "--sanitizer",
            "none",
            "--debug-assertions",
            target,
        ])
        .arg(work_corpus)
        .arg(fuzz_dir().join("corpus").join(target))
        .args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-timeout=10",
            "-print_final_stats=1",
        ]);
    command
}

/// Runs `target` for `seconds`, streaming libFuzzer's output; its figures,
/// or an error naming the crash.
fn fuzz_one(target: &str, seconds: u64) -> Result<Figures> {
    let work_corpus = target_dir().join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&work_corpus).with_context(|| format!("creating {}", work_corpus.display()))?;
    let mut command = run_command(target, seconds, &work_corpus);
    let shown = display(&command);
    eprintln!("+ {shown}");
    let mut child = command
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    let mut figures = Figures::default();
    let mut crash = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line?;
            eprintln!("{line}");
            figures.read(&line);
            if line.contains("Test unit written to") || line.contains("panicked at") {
                crash.push(line);
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!(
            "fuzz target {target} failed ({status}): {}\nreproduce: cd fuzz && cargo +nightly fuzz run --sanitizer none --debug-assertions {target} <artifact>",
            crash.join("; ")
        );
    }
    Ok(figures)
}

/// Appends one run's figures to `<target>/fuzz/runs.tsv`.
fn record(target: &str, seconds: u64, figures: &Figures) -> Result<()> {
    use std::io::Write;
    let path = target_dir().join("fuzz/runs.tsv");
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
    writeln!(
        file,
        "{target}\t{seconds}\t{}\t{}\t{}\t{}",
        figures.execs, figures.cov, figures.features, figures.corpus
    )?;
    Ok(())
}

/// `cargo xtask fuzz`: every target of `targets` (all when empty) for
/// `seconds` each, one after another; fails on the first crash.
pub(crate) fn fuzz(targets: &[String], seconds: u64) -> Result<()> {
    let chosen: Vec<&str> = if targets.is_empty() {
        TARGETS.to_vec()
    } else {
        for t in targets {
            if !TARGETS.contains(&t.as_str()) {
                bail!("unknown fuzz target {t:?}; targets: {}", TARGETS.join(", "));
            }
        }
        targets.iter().map(String::as_str).collect()
    };
    ensure_cargo_fuzz()?;
    let mut table = Vec::new();
    for target in chosen {
        let figures = fuzz_one(target, seconds)?;
        record(target, seconds, &figures)?;
        table.push((target, figures));
    }
    println!("| target | seconds | execs | cov | ft | corpus |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (target, f) in table {
        println!(
            "| {target} | {seconds} | {} | {} | {} | {} |",
            f.execs, f.cov, f.features, f.corpus
        );
    }
    println!("0 crashes");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_is_a_bin_of_the_fuzz_crate_with_a_seed_corpus() {
        let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
        let bins: Vec<&str> = manifest
            .lines()
            .filter_map(|l| l.strip_prefix("name = \""))
            .filter_map(|l| l.strip_suffix('"'))
            .filter(|name| *name != "ecm-fuzz")
            .collect();
        assert_eq!(bins, TARGETS);
        for target in TARGETS {
            let seeds = std::fs::read_dir(fuzz_dir().join("corpus").join(target))
                .unwrap()
                .count();
            assert!((1..=20).contains(&seeds), "{target}: {seeds} seed files");
        }
    }

    #[test]
    fn figures_come_from_status_lines_and_final_stats() {
        let mut f = Figures::default();
        f.read("#4096\tpulse  cov: 1520 ft: 4410 corp: 210/9801b lim: 43 exec/s: 2048 rss: 61Mb");
        f.read("#90817\tDONE   cov: 1604 ft: 4999 corp: 260/12Kb lim: 4096 exec/s: 3027 rss: 70Mb");
        f.read("stat::number_of_executed_units: 90817");
        f.read("stat::average_exec_per_sec:     3027");
        assert_eq!(
            f,
            Figures {
                execs: 90_817,
                cov: 1604,
                features: 4999,
                corpus: 260
            }
        );
    }

    #[test]
    fn the_run_command_seeds_from_the_committed_corpus_and_stops_in_time() {
        let shown = display(&run_command("labels_selector", 60, std::path::Path::new("/w")));
        assert!(shown.contains("fuzz run --sanitizer none --debug-assertions labels_selector /w"));
        assert!(shown.contains("fuzz/corpus/labels_selector -- -max_total_time=60"));
    }
}
