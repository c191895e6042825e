//! Throughput of the in-memory API server: EndpointSlice creates and
//! updates in-process and over HTTP, and watch fan-out to 10 watchers.
//!
//! `cargo bench -p ecm-apiserver`; figures go to docs/benchmarks.md.

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ecm_apiserver::{ApiServer, Config};
use futures::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use serde_json::json;

const BATCH: u64 = 1000;
const CONCURRENCY: usize = 8;

fn slice(name: &str, n: u64) -> EndpointSlice {
    let endpoints: Vec<_> = (0..10)
        .map(|i| json!({"addresses": [format!("10.{}.{}.{}", n % 250, i, n % 200 + 1)], "conditions": {"ready": true}, "nodeName": "node-a"}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": "svc", "endpointslice.kubernetes.io/managed-by": "bench"}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }))
    .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `BATCH` operations with `CONCURRENCY` in flight; `op(i)` makes the i-th.
async fn run_batch<F, Fut>(op: F)
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    futures::stream::iter(0..BATCH)
        .for_each_concurrent(CONCURRENCY, op)
        .await;
}

async fn http_client(server: &ApiServer) -> (kube::Client, ecm_apiserver::ServeHandle) {
    let handle = server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut config = kube::Config::new(handle.url().parse().unwrap());
    config.default_retry = false;
    (kube::Client::try_from(config).unwrap(), handle)
}

fn writes(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("endpointslice_writes");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    for transport in ["in-process", "http"] {
        let (server, api, _handle) = rt.block_on(async {
            let server = ApiServer::new(Config::default().history_size(1000)).unwrap();
            let (client, handle) = if transport == "http" {
                let (c, h) = http_client(&server).await;
                (c, Some(h))
            } else {
                (server.client(), None)
            };
            let api: Api<EndpointSlice> = Api::namespaced(client, "default");
            (server, api, handle)
        });
        let mut round = 0u64;
        group.bench_function(format!("create/{transport}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        round += 1;
                        let r = round;
                        run_batch(|i| {
                            let api = api.clone();
                            async move {
                                api.create(&PostParams::default(), &slice(&format!("s-{r}-{i}"), i))
                                    .await
                                    .unwrap();
                            }
                        })
                        .await;
                    }
                    start.elapsed()
                })
            });
        });
        // Updates: BATCH slices, each replaced with a changed endpoint list.
        let names: Vec<String> = (0..BATCH).map(|i| format!("u-{i}")).collect();
        rt.block_on(async {
            for (i, n) in names.iter().enumerate() {
                api.create(&PostParams::default(), &slice(n, i as u64)).await.unwrap();
            }
        });
        let mut generation = 0u64;
        group.bench_function(format!("update/{transport}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        generation += 1;
                        let g = generation;
                        run_batch(|i| {
                            let api = api.clone();
                            let name = format!("u-{i}");
                            async move {
                                let mut s = slice(&name, i + g);
                                s.metadata.resource_version = None;
                                api.replace(&name, &PostParams::default(), &s).await.unwrap();
                            }
                        })
                        .await;
                    }
                    start.elapsed()
                })
            });
        });
        drop(server);
    }
    group.finish();
}

/// The server alone: pre-serialized requests straight into the `tower::Service`.
fn service_writes(c: &mut Criterion) {
    use http_body_util::{BodyExt, Full};
    use tower::ServiceExt;
    let rt = runtime();
    let mut group = c.benchmark_group("endpointslice_writes");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    let server = rt.block_on(async { ApiServer::new(Config::default().history_size(1000)).unwrap() });
    let mut round = 0u64;
    group.bench_function("create/service", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    let bodies: Vec<bytes::Bytes> = (0..BATCH)
                        .map(|i| serde_json::to_vec(&slice(&format!("r-{round}-{i}"), i)).unwrap().into())
                        .collect();
                    let start = Instant::now();
                    futures::stream::iter(bodies)
                        .for_each_concurrent(CONCURRENCY, |body| {
                            let svc = server.service();
                            async move {
                                let req =
                                    http::Request::post("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices")
                                        .header("content-type", "application/json")
                                        .body(Full::new(body))
                                        .unwrap();
                                let resp = svc.oneshot(req).await.unwrap();
                                assert_eq!(resp.status(), 201);
                                let _ = resp.into_body().collect().await.unwrap();
                            }
                        })
                        .await;
                    total += start.elapsed();
                }
                total
            })
        });
    });
    group.finish();
}

fn fan_out(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("watch_fan_out");
    group.throughput(Throughput::Elements(BATCH * 10));
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    let server = rt.block_on(async { ApiServer::new(Config::default().history_size(1000)).unwrap() });
    let mut round = 0u64;
    group.bench_function("10_watchers/in-process", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    let api: Api<EndpointSlice> = Api::namespaced(server.client(), "default");
                    let rv = server.latest_resource_version().to_string();
                    let mut watchers = Vec::new();
                    for _ in 0..10 {
                        let stream = api
                            .watch(&WatchParams::default().disable_bookmarks(), &rv)
                            .await
                            .unwrap();
                        watchers.push(tokio::spawn(async move {
                            let mut stream = stream.boxed();
                            let mut n = 0;
                            while n < BATCH {
                                if let Some(Ok(WatchEvent::Added(_))) = stream.next().await {
                                    n += 1;
                                }
                            }
                        }));
                    }
                    let start = Instant::now();
                    let r = round;
                    run_batch(|i| {
                        let api = api.clone();
                        async move {
                            api.create(&PostParams::default(), &slice(&format!("w-{r}-{i}"), i))
                                .await
                                .unwrap();
                        }
                    })
                    .await;
                    for w in watchers {
                        w.await.unwrap();
                    }
                    total += start.elapsed();
                }
                total
            })
        });
    });
    group.finish();
}

criterion_group!(benches, service_writes, writes, fan_out);
criterion_main!(benches);
