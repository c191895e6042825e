//! The Tokio runtime `ecm run` and `ecm shadow` run on (`--worker-threads`),
//! and where ecm's code lives in memory (`--huge-text-pages`).
//!
//! ecm's work is mostly waiting on the API server between short syncs. On
//! one thread nothing is handed between threads: no thread is woken to
//! steal a task just queued, and a watch event, the syncs it triggers and
//! their writes all run where the event arrived. At 50 pod changes a second
//! that cost about a fifth less CPU per change than two threads
//! (docs/benchmarks.md), for a few hundred microseconds more latency at the
//! 99th percentile. More threads pay off where CPU-bound work piles up: the
//! first list of a very large cluster, or Services of thousands of
//! endpoints changing all the time.
//!
//! Waking up for each event onto caches and TLBs that other processes used
//! in between is a large part of what a change costs. Before the runtime
//! starts, `ecm run` moves its machine code onto transparent huge pages
//! (ecm-hugetext), so that the code needs a few TLB entries instead of
//! thousands (docs/benchmarks.md, "Code on huge pages").

use anyhow::{Context as _, Result};
use tokio::runtime::{Builder, Runtime};

/// `--worker-threads` and `--huge-text-pages`.
#[derive(clap::Args, Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuntimeFlags {
    /// Threads running ecm's controllers, informers and servers (0: one per
    /// CPU). One uses the least CPU per change; more start very large
    /// clusters faster.
    #[arg(long, default_value_t = 1)]
    pub worker_threads: usize,

    /// Move ecm's machine code onto transparent huge pages at start-up
    /// (x86-64 Linux, where the node's THP setting is not `never`): less
    /// CPU per change, for the size of the code (about 16 MB; 2 MB for a
    /// binary laid out by BOLT, the image's, whose hot code alone moves) in
    /// resident memory. Turn it off to profile with perf, which cannot name
    /// functions in the moved code.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub huge_text_pages: bool,
}

impl Default for RuntimeFlags {
    fn default() -> Self {
        Self {
            worker_threads: 1,
            huge_text_pages: true,
        }
    }
}

impl RuntimeFlags {
    /// With `--huge-text-pages`, moves the code onto huge pages and logs
    /// what it did. Call it before anything starts a thread: the move is
    /// refused (and logged) otherwise.
    pub fn place_code(&self) {
        if !self.huge_text_pages {
            tracing::debug!("code left on small pages (--huge-text-pages=false)");
            return;
        }
        match ecm_hugetext::remap_text() {
            Ok(remapped) if remapped.huge == 0 => tracing::warn!(
                copied_bytes = remapped.copied,
                "code moved, but the kernel gave it no huge pages yet: {remapped}"
            ),
            Ok(remapped) => tracing::info!(
                copied_bytes = remapped.copied,
                huge_bytes = remapped.huge,
                "code moved onto huge pages: {remapped}"
            ),
            Err(
                err @ (ecm_hugetext::Error::Unsupported
                | ecm_hugetext::Error::HugePagesDisabled
                | ecm_hugetext::Error::CodeDiffers),
            ) => tracing::info!("code left on small pages: {err}"),
            Err(err) => tracing::warn!(error = %err, "code left on small pages"),
        }
    }

    /// Builds the runtime, with I/O and timers enabled: for one thread,
    /// Tokio's current-thread runtime (every task runs on the thread that
    /// called `block_on`, with no work-stealing machinery to pay for); else
    /// a multi-threaded runtime with `worker_threads` workers (Tokio's
    /// default, one per CPU, for 0).
    pub fn build(&self) -> Result<Runtime> {
        let mut builder = if self.worker_threads == 1 {
            Builder::new_current_thread()
        } else {
            let mut builder = Builder::new_multi_thread();
            if self.worker_threads > 0 {
                builder.worker_threads(self.worker_threads);
            }
            builder
        };
        builder.enable_all().build().context("cannot start the runtime")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_has_the_threads_asked_for() {
        for (flag, expected) in [
            (1, 1),
            (3, 3),
            (0, std::thread::available_parallelism().map_or(1, usize::from)),
        ] {
            let runtime = RuntimeFlags {
                worker_threads: flag,
                ..RuntimeFlags::default()
            }
            .build()
            .unwrap();
            assert_eq!(runtime.metrics().num_workers(), expected, "--worker-threads={flag}");
            let flavor = if flag == 1 {
                tokio::runtime::RuntimeFlavor::CurrentThread
            } else {
                tokio::runtime::RuntimeFlavor::MultiThread
            };
            assert_eq!(runtime.handle().runtime_flavor(), flavor, "--worker-threads={flag}");
        }
    }
}
