//! The real remap, on this test's own process. The remap refuses to run
//! beside other threads and libtest runs each test on a thread of its own,
//! so this test has no harness: `main` speaks just enough of libtest's
//! command line for `cargo test` and `cargo nextest` (`--list`, a name
//! filter, `--exact`).

// Test code: a failed unwrap is a failed test; it reports on stdout as libtest does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::process::ExitCode;

use ecm_hugetext::maps::{self, Mapping};
use ecm_hugetext::{Error, remap_text};

const NAME: &str = "remaps_its_own_code_and_keeps_running_it";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--list") {
        if !args.iter().any(|arg| arg == "--ignored") {
            println!("{NAME}: test");
        }
        return ExitCode::SUCCESS;
    }
    let exact = args.iter().any(|arg| arg == "--exact");
    let selected = args.iter().filter(|arg| !arg.starts_with('-')).all(|filter| {
        if exact {
            filter == NAME
        } else {
            NAME.contains(filter.as_str())
        }
    });
    if selected {
        remaps_its_own_code_and_keeps_running_it();
        println!("test {NAME} ... ok");
    }
    ExitCode::SUCCESS
}

/// Bytes at `range` of this process's memory, read through `/proc/self/mem`.
fn memory(range: &std::ops::Range<usize>) -> Vec<u8> {
    let mut bytes = vec![0; range.len()];
    File::open("/proc/self/mem")
        .unwrap()
        .read_exact_at(&mut bytes, range.start as u64)
        .unwrap();
    bytes
}

fn maps_now() -> Vec<Mapping> {
    maps::parse(&std::fs::read_to_string("/proc/self/maps").unwrap())
}

fn remaps_its_own_code_and_keeps_running_it() {
    let huge_pages = cfg!(all(target_os = "linux", target_arch = "x86_64"))
        && std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .is_ok_and(|enabled| !enabled.contains("[never]"));
    if !huge_pages {
        assert!(matches!(
            remap_text(),
            Err(Error::Unsupported | Error::HugePagesDisabled)
        ));
        println!("note: no transparent huge pages here; only the refusal was checked");
        return;
    }
    let code: Vec<Mapping> = maps_now()
        .into_iter()
        .filter(|mapping| mapping.is_code() && mapping.inode != 0)
        .filter(|mapping| !mapping.path.contains(".so"))
        .collect();
    let before: Vec<Vec<u8>> = code.iter().map(|mapping| memory(&mapping.range)).collect();

    let remapped = remap_text().expect("the remap");
    println!("{remapped}");
    assert!(!remapped.ranges.is_empty());
    assert_eq!(
        remapped.copied,
        code.iter().map(|mapping| mapping.range.len()).sum::<usize>(),
        "linked with 2 MiB alignment, all of the code moves"
    );
    assert!(remapped.huge > 0, "no huge page: {remapped:?}");

    // The same bytes at the same addresses, now in anonymous memory.
    for (mapping, bytes) in code.iter().zip(&before) {
        assert!(memory(&mapping.range) == *bytes, "{mapping:?} changed");
    }
    let after = maps_now();
    for range in &remapped.ranges {
        let mapping = after
            .iter()
            .find(|mapping| mapping.range.start == range.start)
            .expect("a mapping at each remapped range");
        assert_eq!((mapping.perms.as_str(), mapping.inode), ("r-xp", 0), "{mapping:?}");
        assert!(mapping.path.is_empty(), "{mapping:?}");
    }

    // Still running the moved code: formatting, allocation, a panic caught.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let caught = std::panic::catch_unwind(|| panic!("unwinding through moved code"));
    std::panic::set_hook(hook);
    assert!(caught.is_err());
    assert_eq!(format!("{:?}", vec![1, 2, 3]), "[1, 2, 3]");

    // A second call finds nothing left to move.
    assert!(matches!(remap_text(), Err(Error::NothingToRemap)));
    // And with another thread running, it refuses.
    let (stop, parked) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || parked.recv());
    assert!(matches!(remap_text(), Err(Error::Threads(2))));
    stop.send(()).unwrap();
    thread.join().unwrap().unwrap();
}
