//! Structured logs through `tracing`: text or JSON, verbosity from `-v` or
//! `RUST_LOG`.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. `RUST_LOG` wins over `verbosity`, which
/// maps kube-controller-manager's `-v` levels: 0–1 info, 2–4 debug, 5+ trace.
/// Logs go to stderr, so that `simulate` keeps stdout for its result.
pub fn init(format: LogFormat, verbosity: u8) {
    let default = match verbosity {
        0 | 1 => "info",
        2..=4 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if let Err(err) = installed {
        // Only possible if a subscriber is already set (tests); keep that one.
        tracing::debug!(error = %err, "log subscriber already installed");
    }
}
