//! `ecm`: kube-controller-manager's endpoint controllers as one binary.
//! See [`ecm::cli`].

/// mimalloc instead of glibc's malloc: 12–16 % less CPU per pod change,
/// because its arenas may be backed by transparent huge pages (fewer TLB
/// misses each time ecm wakes up for an event; without them it measures
/// as glibc does). It costs about 17 MB more resident memory at small
/// scale and a little less per cached pod; `MIMALLOC_ALLOW_THP=0` in the
/// environment turns the huge pages off. Measurements in
/// docs/benchmarks.md ("mimalloc").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ecm::cli::main()
}
