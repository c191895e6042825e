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
//! moved code as anonymous: leave the remap out to profile. Uprobes
//! (`perf probe`, bpftrace, eBPF agents) attached after the move do not
//! fire in the moved code; if one is attached before, the code in memory
//! differs from the file and the remap refuses ([`Error::CodeDiffers`]).
//! The copy is read from the executable's file and compared with the code
//! in memory, and the unused address space a range reaches into is
//! reserved before anything is copied.
//!
//! It only works before any other thread starts (it checks), on x86-64
//! Linux with transparent huge pages not `never`; elsewhere it returns an
//! [`Error`] and changes nothing. Segments aligned to 2 MiB at link time
//! (`-z max-page-size=2097152`) let it cover all of the code rather than
//! the 2 MiB-aligned inside.
//!
//! A binary laid out by BOLT keeps its hot code in one small region: only
//! the huge pages around that region move ([`bolt`]), the rest of the code
//! stays where it is, resident only where it runs.
//!
//! | module | holds |
//! |---|---|
//! | [`maps`] | parsing `/proc/self/maps` and planning the ranges (pure) |
//! | [`bolt`] | finding a BOLT binary's hot code in its section headers (pure) |
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

pub mod bolt;
pub mod maps;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod remap;

use std::fmt;
use std::ops::Range;

/// Why the code was not remapped, in full or in part: an error on one
/// range leaves it and the ranges after it as they were (the ranges before
/// it stay moved). The one failure that cannot be undone, of the final
/// `mremap` after the kernel has unmapped the original (for lack of
/// memory), would end the process; the map count limit is checked first.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not x86-64 Linux.
    #[error("only supported on x86-64 Linux")]
    Unsupported,
    /// Transparent huge pages are off (`never`), not built in, or disabled
    /// for this process (`prctl(PR_SET_THP_DISABLE)`).
    #[error("transparent huge pages are disabled")]
    HugePagesDisabled,
    /// Other threads run: remapping code under them is not safe.
    #[error("{0} threads are running; remap before starting any")]
    Threads(usize),
    /// No part of the executable's code spans a whole huge page (or the
    /// code was moved already).
    #[error("the executable's code spans no whole huge page")]
    NothingToRemap,
    /// Something was mapped in the address space a range was to take.
    #[error("another mapping took the address space around the code")]
    Conflict,
    /// The code in memory is not what the executable's file holds: a
    /// debugger breakpoint or a uprobe (perf, bpftrace, eBPF agents) is set
    /// in it, and moving it would break them.
    #[error("the code in memory differs from the executable (a breakpoint or uprobe is set)")]
    CodeDiffers,
    /// The process is near `vm.max_map_count`.
    #[error("too close to vm.max_map_count ({0} mappings allowed)")]
    TooManyMappings(usize),
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
    use super::{Error, Remapped, maps};

    fn read(path: &'static str) -> Result<String, Error> {
        std::fs::read_to_string(path).map_err(|source| Error::Read { path, source })
    }

    /// The threads of this process, from `/proc/self/status`.
    fn threads() -> Result<usize, Error> {
        let status = read("/proc/self/status")?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("Threads:"))
            .and_then(|count| count.trim().parse().ok())
            .ok_or_else(|| Error::Read {
                path: "/proc/self/status",
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "no Threads: line"),
            })
    }

    /// The huge page size, unless transparent huge pages are off.
    fn huge_page_size() -> Result<usize, Error> {
        let enabled = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .map_err(|_| Error::HugePagesDisabled)?;
        if enabled.contains("[never]") || crate::remap::disabled_for_process() {
            return Err(Error::HugePagesDisabled);
        }
        let size = read("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")?;
        match size.trim().parse::<usize>() {
            Ok(size) if size.is_power_of_two() => Ok(size),
            _ => Err(Error::HugePagesDisabled),
        }
    }

    pub(super) fn remap_text() -> Result<Remapped, Error> {
        let huge_page = huge_page_size()?;
        match threads()? {
            1 => {}
            n => return Err(Error::Threads(n)),
        }
        let mappings = maps::parse(&read("/proc/self/maps")?);
        // The code is that of the file mapped where this function is, as
        // /proc/self/maps names it (stat of /proc/self/exe may show another
        // device on overlayfs before Linux 6.8, or on btrfs subvolumes).
        let here = maps::containing(&mappings, remap_text as fn() -> _ as usize).ok_or(Error::NothingToRemap)?;
        let plans = maps::plan(&mappings, (here.device, here.inode), huge_page);
        if plans.is_empty() {
            return Err(Error::NothingToRemap);
        }
        // Each range takes up to four more mappings while it moves.
        let limit = read("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|limit| limit.trim().parse::<usize>().ok())
            .unwrap_or(usize::MAX);
        if mappings.len() + 4 * plans.len() + 64 > limit {
            return Err(Error::TooManyMappings(limit));
        }
        // The executable's bytes as the file holds them: the copy must not
        // take along breakpoints written into the code in memory. Read
        // through the link, which reaches the file even once it is
        // replaced or deleted; each range checks it is the same code.
        let file = std::fs::File::open("/proc/self/exe").map_err(|source| Error::Read {
            path: "/proc/self/exe",
            source,
        })?;
        let plans = match crate::bolt::hot_text(&|offset, len| {
            use std::os::unix::fs::FileExt as _;
            let mut bytes = vec![0; len];
            file.read_exact_at(&mut bytes, offset).ok().map(|()| bytes)
        }) {
            Some(hot) => maps::keep_hot(plans, &hot, huge_page),
            None => plans,
        };
        if plans.is_empty() {
            return Err(Error::NothingToRemap);
        }
        for plan in &plans {
            // SAFETY: the plan was made from the current maps a moment ago;
            // only this thread runs (checked above) and nothing in between
            // maps memory near the executable: the ranges' gaps are
            // reserved before anything is copied, which fails rather than
            // replaces. Each remap leaves the others' ranges as they were.
            unsafe { crate::remap::remap(plan, huge_page, &file)? };
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
