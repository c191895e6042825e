//! `--huge-text-pages`: `ecm run` moves its machine code onto transparent
//! huge pages before it starts, and then works as before.

// Test code: a failed unwrap is a failed test; printing says why a test is skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

mod support;

use ecm_hugetext::maps::{self, Mapping};
use support::{Ecm, eventually, http_get_status};

/// Whether this machine can back anonymous memory with huge pages.
fn huge_pages_available() -> bool {
    cfg!(all(target_os = "linux", target_arch = "x86_64"))
        && std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .is_ok_and(|enabled| !enabled.contains("[never]"))
}

/// A running `ecm run --embedded` with the scratch directory of its
/// kubeconfig (removed when dropped, after the process is stopped).
struct Running {
    /// Stopped when dropped, before the directory is removed.
    _ecm: Ecm,
    _dir: tempfile::TempDir,
}

/// Starts `ecm run --embedded` with `flag`, waits until it is ready, and
/// returns it with its executable mappings and the `AnonHugePages` of the
/// anonymous ones.
fn ready_ecm(flag: &str) -> (Running, Vec<Mapping>, usize) {
    let dir = tempfile::Builder::new().prefix("ecm-hugetext-").tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_ecm"));
    command
        .args(["run", "--embedded", "--embedded-listen", "127.0.0.1:0"])
        .args(["--health-probe-bind-address", "127.0.0.1:0"])
        .args(["--metrics-bind-address", "0", "--leader-elect=false"])
        .arg(flag)
        .arg("--embedded-kubeconfig")
        .arg(dir.path().join("kubeconfig"));
    let mut ecm = Ecm::spawn(command);
    let probes: SocketAddr = eventually(Duration::from_secs(60), "the probes' address", || {
        assert!(ecm.running(), "ecm stopped:\n{}", ecm.stdout());
        let out = ecm.stdout();
        let (_, rest) = out.split_once("Health probes: http://")?;
        rest.split(['/', ' ', '\n']).next()?.parse().ok()
    });
    // Ready means the informers listed and synced: plenty of code ran.
    eventually(Duration::from_secs(60), "/readyz", || {
        (http_get_status(probes, "/readyz").ok()? == 200).then_some(())
    });
    let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", ecm.id())).unwrap();
    let executable: Vec<Mapping> = smaps
        .lines()
        .filter_map(Mapping::parse)
        .filter(Mapping::is_executable)
        .collect();
    let anonymous: Vec<usize> = executable
        .iter()
        .filter(|mapping| mapping.inode == 0 && mapping.path.is_empty())
        .map(|mapping| mapping.range.start)
        .collect();
    let huge = maps::huge_bytes(&smaps, &anonymous);
    (Running { _ecm: ecm, _dir: dir }, executable, huge)
}

#[test]
fn the_code_moves_onto_huge_pages_and_ecm_still_serves() {
    if !huge_pages_available() {
        eprintln!("skipped: no transparent huge pages on this machine");
        return;
    }
    let (_ecm, executable, huge) = ready_ecm("--huge-text-pages=true");
    let moved: usize = executable
        .iter()
        .filter(|mapping| mapping.inode == 0 && mapping.path.is_empty())
        .map(|mapping| mapping.range.len())
        .sum();
    let binary = std::fs::canonicalize(env!("CARGO_BIN_EXE_ecm")).unwrap();
    let left: usize = executable
        .iter()
        .filter(|mapping| std::path::Path::new(&mapping.path) == binary)
        .map(|mapping| mapping.range.len())
        .sum();
    assert!(
        moved >= 2 << 20,
        "no anonymous code mapping of a huge page or more: {executable:#?}"
    );
    // Linked with 2 MiB segment alignment, all of the code moves.
    assert_eq!(left, 0, "code left in the file mapping: {executable:#?}");
    assert!(huge > 0, "the moved code is on no huge page: {executable:#?}");
}

#[test]
fn with_the_flag_off_the_code_stays_in_the_file_mapping() {
    let (_ecm, executable, _) = ready_ecm("--huge-text-pages=false");
    let binary = std::fs::canonicalize(env!("CARGO_BIN_EXE_ecm")).unwrap();
    assert!(
        executable
            .iter()
            .any(|mapping| std::path::Path::new(&mapping.path) == binary),
        "{executable:#?}"
    );
    assert!(
        executable
            .iter()
            .all(|mapping| mapping.inode != 0 || !mapping.path.is_empty()),
        "anonymous code with --huge-text-pages=false: {executable:#?}"
    );
}
