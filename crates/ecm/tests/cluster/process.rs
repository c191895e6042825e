//! `ecm` child processes whose stderr is kept in a file, killed with
//! SIGKILL (`Child::kill`) when asked or dropped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// The `ecm` binary to run: `$ECM_CHAOS_BIN` (xtask sets it to a private
/// copy, safe from concurrent rebuilds), else the one cargo built for the tests.
pub(crate) fn ecm_binary() -> std::ffi::OsString {
    std::env::var_os("ECM_CHAOS_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_ecm").into())
}

/// One `ecm` process.
pub(crate) struct EcmProcess {
    child: Child,
    stderr: PathBuf,
}

impl EcmProcess {
    /// Runs the `ecm` binary with `args` against the server of `kubeconfig`,
    /// probes and metrics off, `env` set, stderr to `stderr`.
    pub(crate) fn spawn(args: &[&str], kubeconfig: &Path, env: &[(&str, &str)], stderr: PathBuf) -> Self {
        let log = File::create(&stderr).expect("stderr file");
        let child = Command::new(ecm_binary())
            .args(args)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--health-probe-bind-address", "0", "--metrics-bind-address", "0"])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("ecm starts");
        Self { child, stderr }
    }

    /// Its process id.
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its exit status, if it has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// What it wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Lines of stderr telling of a panic.
    pub(crate) fn panics(&self) -> Vec<String> {
        self.stderr()
            .lines()
            .filter(|l| l.contains("panicked"))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for EcmProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
