//! Stopping on SIGTERM and SIGINT, for `ecm run` and `ecm shadow`.

use tokio_util::sync::CancellationToken;

/// Cancels `token` on SIGTERM or SIGINT.
pub fn stop_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("interrupted, shutting down"),
            () = term => tracing::info!("terminated, shutting down"),
        }
        token.cancel();
    });
}
