//! Client-side API rate limiting (`--kube-api-qps`, `--kube-api-burst`) as a
//! tower layer on the `kube::Client` stack.
//!
//! Like client-go's token-bucket rate limiter, each request takes a token;
//! when the bucket is empty the request waits until its token is due
//! (reservation semantics, from [`ecm_workqueue::Bucket`]). The wait happens
//! in `poll_ready`, so the layer works under kube's request buffer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ecm_workqueue::{Bucket, RateLimiter};
use tokio::time::Sleep;
use tower::{Layer, Service};

/// Limits the request rate of the wrapped service to `qps` requests per
/// second with bursts of `burst`.
#[derive(Clone)]
pub struct ThrottleLayer {
    bucket: Arc<Bucket>,
}

impl ThrottleLayer {
    /// A layer allowing `qps` requests per second with bursts of `burst`.
    /// A non-positive `qps` disables throttling.
    pub fn new(qps: f32, burst: u32) -> Option<Self> {
        (qps > 0.0).then(|| Self {
            bucket: Arc::new(Bucket::new(f64::from(qps), burst.max(1) as usize)),
        })
    }
}

impl<S> Layer<S> for ThrottleLayer {
    type Service = Throttle<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Throttle {
            inner,
            bucket: Arc::clone(&self.bucket),
            state: State::NeedToken,
        }
    }
}

/// The service [`ThrottleLayer`] produces.
pub struct Throttle<S> {
    inner: S,
    bucket: Arc<Bucket>,
    state: State,
}

enum State {
    /// No token reserved for the next request yet.
    NeedToken,
    /// A token is reserved; it becomes usable when the sleep ends.
    Waiting(Pin<Box<Sleep>>),
    /// A token is held for the next `call`.
    Ready,
}

impl<S, Req> Service<Req> for Throttle<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        loop {
            match &mut self.state {
                State::NeedToken => {
                    let wait = RateLimiter::<()>::when(self.bucket.as_ref(), &());
                    self.state = if wait.is_zero() {
                        State::Ready
                    } else {
                        State::Waiting(Box::pin(tokio::time::sleep(wait)))
                    };
                }
                State::Waiting(sleep) => {
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.state = State::Ready;
                }
                State::Ready => return self.inner.poll_ready(cx),
            }
        }
    }

    fn call(&mut self, req: Req) -> Self::Future {
        self.state = State::NeedToken;
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::Instant;
    use tower::ServiceExt;

    #[tokio::test(start_paused = true)]
    async fn requests_beyond_the_burst_wait_for_tokens() {
        let layer = ThrottleLayer::new(10.0, 2).unwrap();
        let mut service = layer.layer(tower::service_fn(|n: u32| async move {
            Ok::<_, std::convert::Infallible>(n)
        }));
        let start = Instant::now();
        for n in 0..4 {
            assert_eq!(service.ready().await.unwrap().call(n).await.unwrap(), n);
        }
        // Two burst tokens at once, then one every 100 ms.
        assert_eq!(start.elapsed(), Duration::from_millis(200));
    }

    #[test]
    fn zero_qps_disables_throttling() {
        assert!(ThrottleLayer::new(0.0, 10).is_none());
    }
}
