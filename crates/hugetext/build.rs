//! Links this crate's tests as `ecm` is linked (`crates/ecm/build.rs`):
//! segments aligned to 2 MiB, so that the small test binary's code, too,
//! has whole huge pages to move to.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os == "linux" && arch == "x86_64" {
        println!("cargo::rustc-link-arg-tests=-Wl,-z,max-page-size=2097152");
    }
}
