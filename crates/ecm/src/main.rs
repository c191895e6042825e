//! `ecm`: kube-controller-manager's endpoint controllers as one binary.
//! See [`ecm::cli`].

fn main() -> std::process::ExitCode {
    ecm::cli::main()
}
