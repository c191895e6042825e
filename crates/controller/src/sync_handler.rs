//! [`SyncHandler`]: what a controller's workers call for each key
//! (client-go's `syncHandler`), and the bookkeeping every sync gets.

use std::fmt::Display;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

/// Brings one key to its desired state. A controller implements
/// [`sync`](Self::sync) (read the caches, compute, write) and, for its
/// metrics, [`record`](Self::record); [`ControllerCore::run`](crate::ControllerCore::run)
/// calls [`sync_recorded`](Self::sync_recorded) for every key a worker
/// takes, and retries the key with back-off when it fails.
///
/// ```
/// use std::time::Duration;
/// use async_trait::async_trait;
/// use ecm_controller::SyncHandler;
///
/// struct Greeter;
///
/// #[async_trait]
/// impl SyncHandler<String> for Greeter {
///     type Error = std::fmt::Error;
///
///     async fn sync(&self, key: &String) -> Result<(), Self::Error> {
///         tracing::info!("hello, {key}");
///         Ok(())
///     }
/// }
///
/// # tokio_test_block(async {
/// assert!(Greeter.sync_recorded(&"world".to_owned()).await.is_ok());
/// # });
/// # fn tokio_test_block(f: impl std::future::Future<Output = ()>) {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[async_trait]
pub trait SyncHandler<K>: Send + Sync + 'static
where
    K: Display + Send + Sync + 'static,
{
    /// Why a sync failed; the failed key is retried with back-off.
    type Error: Display + Send + 'static;

    /// Brings `key` to its desired state: the only place a controller
    /// writes.
    async fn sync(&self, key: &K) -> Result<(), Self::Error>;

    /// Records a finished sync of `key` (its outcome and how long it took),
    /// for the controller's metrics. Nothing by default.
    fn record(&self, key: &K, result: &Result<(), Self::Error>, took: Duration) {
        let _ = (key, result, took);
    }

    /// [`sync`](Self::sync), timed, then [`record`](Self::record)ed and
    /// logged at debug level.
    async fn sync_recorded(&self, key: &K) -> Result<(), Self::Error> {
        let started = Instant::now();
        let result = self.sync(key).await;
        let took = started.elapsed();
        self.record(key, &result, took);
        match &result {
            Ok(()) => tracing::debug!(%key, ?took, "finished syncing"),
            Err(error) => tracing::debug!(%key, ?took, %error, "sync failed"),
        }
        result
    }
}
