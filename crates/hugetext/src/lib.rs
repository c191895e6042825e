//! Moves a running Linux executable's machine code onto transparent huge
//! pages.
//!
//! A program that sleeps between short bursts of work (a controller waking
//! for each watch event) spends a good part of every burst on TLB misses:
//! its code is spread over thousands of 4 KiB pages, and the entries for
//! them were evicted while it slept. Linux backs a file's code with huge
//! pages only when built with `CONFIG_READ_ONLY_THP_FOR_FS`, which few
//! distribution kernels are. [`remap_text`] therefore does what Chromium
//! (`hugepage_text`) and HHVM do at start-up: copy the code into anonymous
//! memory advised `MADV_HUGEPAGE`, make that read-only and executable, and
//! move it over the original with one `mremap`. The executable's code then
//! costs a handful of TLB entries instead of thousands. Data segments stay
//! as they are.
//!
//! Costs: the code becomes anonymous memory, so all of it counts in the
//! process's resident memory (the size of `.text`, rounded up to 2 MiB),
//! where before only the pages used did, shared with the page cache.
//! Profilers that resolve symbols through the file mapping (`perf`) see the
//! moved code as anonymous: leave the remap out to profile.
//!
//! It only works before any other thread starts (it checks), on x86-64
//! Linux with transparent huge pages not `never`; elsewhere it returns an
//! [`Error`] and changes nothing. Segments aligned to 2 MiB at link time
//! (`-z max-page-size=2097152`) let it cover all of the code rather than
//! the 2 MiB-aligned inside.
//!
//! | module | holds |
//! |---|---|
//! | [`maps`] | parsing `/proc/self/maps` and planning the ranges (pure) |
//! | `remap` | the system calls (the crate's only `unsafe` code) |
//!
//! `tests/remap_self.rs` runs the real remap on its own test process (a
//! test without libtest's harness, since the remap refuses to run beside
//! other threads).
//!
//! # Example
//!
//! ```no_run
//! // First thing in `main`, before a runtime or any other thread starts.
//! match ecm_hugetext::remap_text() {
//!     Ok(remapped) => eprintln!("{remapped}"),
//!     Err(err) => eprintln!("code stays on small pages: {err}"),
//! }
//! // ... start the runtime ...
//! ```

pub mod maps;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod remap;

use std::fmt;
use std::ops::Range;

/// Why the code was not remapped. Nothing was changed, except after a
/// failed [`Error::System`] call, where the ranges before it are remapped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not x86-64 Linux.
    #[error("only supported on x86-64 Linux")]
    Unsupported,
    /// Transparent huge pages are off (`never`) or not built in.
    #[error("transparent huge pages are disabled")]
    HugePagesDisabled,
    /// Other threads run: remapping code under them is not safe.
    #[error("{0} threads are running; remap before starting any")]
    Threads(usize),
    /// No part of the executable's code spans a whole huge page.
    #[error("the executable's code spans no whole huge page")]
    NothingToRemap,
    /// Reading `/proc` or `/sys` failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("{call} failed: {source}")]
    System {
        /// The call.
        call: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

/// What [`remap_text`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remapped {
    /// The address ranges now backed by anonymous memory.
    pub ranges: Vec<Range<usize>>,
    /// Bytes of code copied.
    pub copied: usize,
    /// Bytes of those ranges the kernel reports as huge pages right after
    /// the move (`AnonHugePages`); less than their size when it could not
    /// find free huge pages (it may still collapse them later).
    pub huge: usize,
}

impl fmt::Display for Remapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const KIB: usize = 1024;
        write!(
            f,
            "{} KiB of code moved to {} range(s), {} KiB of them on huge pages",
            self.copied / KIB,
            self.ranges.len(),
            self.huge / KIB
        )
    }
}

/// Moves the executable's code onto huge pages; see the crate docs.
/// Call it first thing in `main`: it refuses once a second thread runs.
pub fn remap_text() -> Result<Remapped, Error> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        linux::remap_text()
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        Err(Error::Unsupported)
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod linux {
    use std::os::unix::fs::MetadataExt as _;

    use super::{Error, Remapped, maps};

    fn read(path: &'static str) -> Result<String, Error> {
        std::fs::read_to_string(path).map_err(|source| Error::Read { path, source })
    }

    /// The threads of this process, from `/proc/self/status`.
    fn threads() -> Result<usize, Error> {
        let status = read("/proc/self/status")?;
        Ok(status
            .lines()
            .find_map(|line| line.strip_prefix("Threads:"))
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or(0))
    }

    /// The huge page size, unless transparent huge pages are off.
    fn huge_page_size() -> Result<usize, Error> {
        let enabled = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .map_err(|_| Error::HugePagesDisabled)?;
        if enabled.contains("[never]") {
            return Err(Error::HugePagesDisabled);
        }
        let size = read("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")?;
        match size.trim().parse::<usize>() {
            Ok(size) if size.is_power_of_two() => Ok(size),
            _ => Err(Error::HugePagesDisabled),
        }
    }

    /// The executable's (device, inode), as `/proc/self/maps` shows them.
    fn executable() -> Result<((u32, u32), u64), Error> {
        let metadata = std::fs::metadata("/proc/self/exe").map_err(|source| Error::Read {
            path: "/proc/self/exe",
            source,
        })?;
        let device = metadata.dev();
        Ok(((libc::major(device), libc::minor(device)), metadata.ino()))
    }

    pub(super) fn remap_text() -> Result<Remapped, Error> {
        let huge_page = huge_page_size()?;
        match threads()? {
            1 => {}
            n => return Err(Error::Threads(n)),
        }
        let executable = executable()?;
        let mappings = maps::parse(&read("/proc/self/maps")?);
        let plans = maps::plan(&mappings, executable, huge_page);
        if plans.is_empty() {
            return Err(Error::NothingToRemap);
        }
        for plan in &plans {
            // SAFETY: the plan was made from the current maps a moment ago
            // and only this thread runs (checked above), so nothing has
            // changed them since; each remap leaves the others' ranges as
            // they were.
            unsafe { crate::remap::remap(plan, huge_page)? };
        }
        let starts: Vec<usize> = plans.iter().map(|plan| plan.target.start).collect();
        let huge = read("/proc/self/smaps").map_or(0, |smaps| maps::huge_bytes(&smaps, &starts));
        Ok(Remapped {
            ranges: plans.iter().map(|plan| plan.target.clone()).collect(),
            copied: plans.iter().map(|plan| plan.copy.len()).sum(),
            huge,
        })
    }
}
