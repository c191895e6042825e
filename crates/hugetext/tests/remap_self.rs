//! The real remap, on this test's own process. The remap refuses to run
//! beside other threads and libtest runs each test on a thread of its own,
//! so this test has no harness: `main` speaks enough of libtest's command
//! line for `cargo test` and `cargo nextest` (`--list`, name filters,
//! `--exact`, `--skip`, `--ignored`, and the flags that take a value).

// Test code: a failed unwrap is a failed test; it reports on stdout as libtest does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt as _;
use std::process::ExitCode;

use ecm_hugetext::maps::{self, Mapping};
use ecm_hugetext::{Error, remap_text};

const NAME: &str = "remaps_its_own_code_and_keeps_running_it";

/// libtest's flags that take a value as the next argument.
const WITH_VALUE: [&str; 7] = [
    "--test-threads",
    "--format",
    "--logfile",
    "--color",
    "--shuffle-seed",
    "--report-time",
    "-Z",
];

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut filters, mut skips) = (Vec::new(), Vec::new());
    let (mut list, mut exact, mut ignored_only) = (false, false, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--list" => list = true,
            "--exact" => exact = true,
            "--ignored" => ignored_only = true,
            "--skip" => skips.extend(args.next()),
            flag if WITH_VALUE.contains(&flag) => {
                args.next();
            }
            flag if flag.starts_with('-') => {}
            _ => filters.push(arg),
        }
    }
    let matches = |pattern: &String| {
        if exact {
            pattern == NAME
        } else {
            NAME.contains(pattern.as_str())
        }
    };
    // The one test is not ignored: `--ignored` selects nothing.
    let selected = !ignored_only && (filters.is_empty() || filters.iter().any(matches)) && !skips.iter().any(matches);
    if list {
        if selected {
            println!("{NAME}: test");
        }
        return ExitCode::SUCCESS;
    }
    println!("\nrunning {} test", u8::from(selected));
    if selected {
        remaps_its_own_code_and_keeps_running_it();
        println!("test {NAME} ... ok");
    }
    println!(
        "\ntest result: ok. {} passed; 0 failed; 0 ignored; 0 measured; {} filtered out\n",
        u8::from(selected),
        u8::from(!selected)
    );
    ExitCode::SUCCESS
}

/// Bytes at `range` of this process's memory, read through `/proc/self/mem`.
fn memory(range: &Range<usize>) -> Vec<u8> {
    let mut bytes = vec![0; range.len()];
    File::open("/proc/self/mem")
        .unwrap()
        .read_exact_at(&mut bytes, range.start as u64)
        .unwrap();
    bytes
}

/// Writes `byte` at `address` through `/proc/self/mem`, as a debugger
/// does (read-only code included); false where the kernel does not allow it.
fn poke(address: usize, byte: u8) -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/mem")
        .and_then(|mem| mem.write_at(&[byte], address as u64))
        .is_ok_and(|written| written == 1)
}

fn maps_now() -> Vec<Mapping> {
    maps::parse(&std::fs::read_to_string("/proc/self/maps").unwrap())
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
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
        println!("skipped: no transparent huge pages here; only the refusal was checked");
        return;
    }
    let maps_before = maps_now();
    let this = maps::containing(&maps_before, main as fn() -> ExitCode as usize)
        .expect("the mapping of this test's code")
        .clone();
    let code: Vec<Mapping> = maps_before
        .iter()
        .filter(|mapping| mapping.is_code() && (mapping.device, mapping.inode) == (this.device, this.inode))
        .cloned()
        .collect();
    let before: Vec<Vec<u8>> = code.iter().map(|mapping| memory(&mapping.range)).collect();

    // A breakpoint in the code (as a debugger or uprobe writes one): the
    // remap must refuse rather than copy it. Written into a run of the
    // linker's int3 padding between functions, which never runs.
    let (mapping, bytes) = code.iter().zip(&before).next().unwrap();
    let padding = bytes.windows(8).position(|run| run.iter().all(|&b| b == 0xcc));
    match padding.map(|at| mapping.range.start + at + 4) {
        Some(address) if poke(address, 0xcd) => {
            assert!(matches!(remap_text(), Err(Error::CodeDiffers)));
            let files = |maps: Vec<Mapping>| -> Vec<Mapping> {
                maps.into_iter().filter(|m| m.inode != 0 || m.is_executable()).collect()
            };
            assert_eq!(
                files(maps_now()),
                files(maps_before.clone()),
                "a refused remap changed the file or code mappings"
            );
            assert!(poke(address, 0xcc));
        }
        _ => println!("note: could not set a breakpoint; the refusal was not checked"),
    }

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
        // Where the range reached past the code, into unused address
        // space, it holds zeros.
        let inside: Vec<&Mapping> = code.iter().filter(|c| overlaps(&c.range, range)).collect();
        let first = inside.iter().map(|c| c.range.start).min().unwrap();
        let last = inside.iter().map(|c| c.range.end).max().unwrap();
        for gap in [range.start..first.max(range.start), last.min(range.end)..range.end] {
            assert!(memory(&gap).iter().all(|&byte| byte == 0), "{gap:x?} is not zeros");
        }
    }
    // Every file mapping outside the moved ranges is as it was.
    let outside = |maps: &[Mapping]| -> Vec<Mapping> {
        maps.iter()
            .filter(|m| m.inode != 0 && !remapped.ranges.iter().any(|r| overlaps(r, &m.range)))
            .cloned()
            .collect()
    };
    assert_eq!(
        outside(&after),
        outside(&maps_before),
        "file mappings outside the moved ranges changed"
    );

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
