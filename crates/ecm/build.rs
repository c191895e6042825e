//! Link-time layout of the `ecm` binary.

fn main() {
    // Align the executable's segments to 2 MiB (the x86-64 huge page), so
    // that gaps of unused address space surround its code and
    // `--huge-text-pages` (ecm-hugetext) can move all of the code onto huge
    // pages instead of only its 2 MiB-aligned inside. Addresses only: the
    // file does not grow.
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os == "linux" && arch == "x86_64" {
        println!("cargo::rustc-link-arg-bin=ecm=-Wl,-z,max-page-size=2097152");
    }
}
