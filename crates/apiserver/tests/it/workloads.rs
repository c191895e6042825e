use std::collections::HashMap;
use std::time::Duration;

use ecm_apiserver::{Config, KubeletConfig, WorkloadsConfig};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;

use crate::{Harness, eventually, obj, start};

async fn cluster() -> Harness {
    let kubelet = KubeletConfig::default()
        .ready_delay(Duration::from_millis(20))
        .termination_delay(Duration::from_millis(20));
    start(Config::default().kubelet(kubelet).workloads(WorkloadsConfig::default())).await
}

fn deployment(name: &str, replicas: i32, strategy: &serde_json::Value) -> Deployment {
    obj(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        },
    }))
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Active (not terminating) pods by pod-template-hash.
async fn active_pods(pods: &Api<Pod>, app: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

fn hash_of(p: &Pod) -> String {
    p.metadata.labels.as_ref().unwrap()["pod-template-hash"].clone()
}

/// Waits for the rollout to be complete as `kubectl rollout status` sees it.
async fn rolled_out(deploys: &Api<Deployment>, name: &str, replicas: i32) -> Deployment {
    eventually("the rollout to complete", || async {
        let d = deploys.get(name).await.unwrap();
        let s = d.status.clone()?;
        let progressed = s
            .conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("NewReplicaSetAvailable"));
        (s.observed_generation >= d.metadata.generation
            && s.updated_replicas == Some(replicas)
            && s.replicas == Some(replicas)
            && s.available_replicas == Some(replicas)
            && progressed)
            .then_some(d)
    })
    .await
}

#[tokio::test]
async fn deployment_creates_owned_replica_set_and_ready_pods_then_scales_and_cascades() {
    let h = cluster().await;
    let deploys: Api<Deployment> = Api::namespaced(h.client.clone(), "default");
    let sets: Api<ReplicaSet> = Api::namespaced(h.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    let created = deploys
        .create(&PostParams::default(), &deployment("web", 3, &json!({})))
        .await
        .unwrap();
    let spec = created.spec.as_ref().unwrap();
    assert_eq!(spec.revision_history_limit, Some(10), "defaulted");
    let rolling = spec.strategy.as_ref().unwrap().rolling_update.as_ref().unwrap();
    assert_eq!(serde_json::to_value(&rolling.max_surge).unwrap(), json!("25%"));
    let d = rolled_out(&deploys, "web", 3).await;
    let conds = d.status.unwrap().conditions.unwrap();
    let available = conds.iter().find(|c| c.type_ == "Available").unwrap();
    assert_eq!(
        (available.status.as_str(), available.reason.as_deref()),
        ("True", Some("MinimumReplicasAvailable"))
    );
    assert_eq!(
        d.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "1"
    );

    let rs = sets.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(rs.len(), 1);
    let rs = &rs[0];
    let hash = rs.metadata.labels.as_ref().unwrap()["pod-template-hash"].clone();
    assert_eq!(rs.metadata.name.as_deref(), Some(format!("web-{hash}").as_str()));
    let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Deployment", "web"));
    assert_eq!((owner.controller, owner.block_owner_deletion), (Some(true), Some(true)));
    let selector = rs.spec.as_ref().unwrap().selector.match_labels.clone().unwrap();
    assert_eq!(selector["pod-template-hash"], hash);

    let running = active_pods(&pods, "web").await;
    assert_eq!(running.len(), 3);
    for p in &running {
        assert_eq!(hash_of(p), hash);
        let owner = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("ReplicaSet", Some(true)));
        assert!(p.metadata.name.as_ref().unwrap().starts_with(&format!("web-{hash}-")));
        assert!(is_ready(p));
    }

    // The scale subresource, as kubectl scale and autoscalers use it.
    let scale = deploys.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    deploys
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    rolled_out(&deploys, "web", 5).await;
    assert_eq!(active_pods(&pods, "web").await.len(), 5);
    let err = deploys
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": -1}})),
        )
        .await
        .unwrap_err();
    assert_eq!(crate::status(err).code, 422);
    deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .unwrap();
    rolled_out(&deploys, "web", 2).await;
    eventually("2 pods", || async {
        (active_pods(&pods, "web").await.len() == 2).then_some(())
    })
    .await;
    assert_eq!(h.server.write_log().len(), 3, "simulator writes are internal");

    deploys.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("ReplicaSets and pods garbage collected", || async {
        let rs = sets.list(&ListParams::default()).await.unwrap().items;
        let p = pods.list(&ListParams::default()).await.unwrap().items;
        (rs.is_empty() && p.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn rollout_restart_replaces_every_pod_within_the_surge() {
    let h = cluster().await;
    let deploys: Api<Deployment> = Api::namespaced(h.client.clone(), "default");
    let sets: Api<ReplicaSet> = Api::namespaced(h.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    let strategy = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}});
    let mut d = deployment("api", 10, &strategy);
    d.spec.as_mut().unwrap().revision_history_limit = Some(1);
    deploys.create(&PostParams::default(), &d).await.unwrap();
    rolled_out(&deploys, "api", 10).await;
    let old_hash = hash_of(&active_pods(&pods, "api").await[0]);

    // Watch ReplicaSet sizes: their sum never exceeds replicas + maxSurge.
    let stream = watcher(sets.clone(), watcher::Config::default());
    let max_total = tokio::spawn(async move {
        let mut sizes: HashMap<String, i32> = HashMap::new();
        let mut max = 0;
        let mut stream = std::pin::pin!(stream);
        while let Some(Ok(ev)) = stream.next().await {
            if let watcher::Event::Apply(rs) | watcher::Event::InitApply(rs) = ev {
                sizes.insert(rs.metadata.name.unwrap(), rs.spec.unwrap().replicas.unwrap_or(1));
                max = max.max(sizes.values().sum::<i32>());
            }
            if let Some(limit) = (max > 12).then_some(max) {
                return limit;
            }
        }
        max
    });
    let restart = json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-12-06T20:00:00Z"}}}}});
    deploys
        .patch("api", &PatchParams::default(), &Patch::Strategic(restart))
        .await
        .unwrap();
    let d = rolled_out(&deploys, "api", 10).await;
    assert_eq!(
        d.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "2"
    );
    let running = eventually("only new pods", || async {
        let p = active_pods(&pods, "api").await;
        (p.len() == 10 && p.iter().all(|p| hash_of(p) != old_hash)).then_some(p)
    })
    .await;
    assert!(running.iter().all(is_ready));
    let rs = eventually("the old ReplicaSet kept (history limit 1)", || async {
        let rs = sets.list(&ListParams::default()).await.unwrap().items;
        (rs.len() == 2).then_some(rs)
    })
    .await;
    let old = rs
        .iter()
        .find(|r| r.metadata.labels.as_ref().unwrap()["pod-template-hash"] == old_hash)
        .unwrap();
    assert_eq!(old.spec.as_ref().unwrap().replicas, Some(0));
    max_total.abort();
    let seen = max_total.await.unwrap_or(0);
    assert!(seen <= 12, "ReplicaSets summed to {seen} > 10 + maxSurge 2");

    // A second restart: the first revision goes (revisionHistoryLimit 1).
    let restart = json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-12-06T20:01:00Z"}}}}});
    deploys
        .patch("api", &PatchParams::default(), &Patch::Strategic(restart))
        .await
        .unwrap();
    rolled_out(&deploys, "api", 10).await;
    eventually("the oldest ReplicaSet deleted", || async {
        let rs = sets.list(&ListParams::default()).await.unwrap().items;
        (rs.len() == 2
            && rs
                .iter()
                .all(|r| r.metadata.labels.as_ref().unwrap()["pod-template-hash"] != old_hash))
        .then_some(())
    })
    .await;
}

#[tokio::test]
async fn recreate_removes_old_pods_before_new_ones_start() {
    let h = cluster().await;
    let deploys: Api<Deployment> = Api::namespaced(h.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    deploys
        .create(
            &PostParams::default(),
            &deployment("db", 3, &json!({"type": "Recreate"})),
        )
        .await
        .unwrap();
    rolled_out(&deploys, "db", 3).await;
    let old_hash = hash_of(&active_pods(&pods, "db").await[0]);
    let stream = watcher(pods.clone(), watcher::Config::default());
    let overlap = tokio::spawn(async move {
        let mut alive: HashMap<String, String> = HashMap::new();
        let mut stream = std::pin::pin!(stream);
        while let Some(Ok(ev)) = stream.next().await {
            match ev {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                    alive.insert(p.metadata.name.clone().unwrap(), hash_of(&p));
                }
                watcher::Event::Delete(p) => {
                    alive.remove(p.metadata.name.as_ref().unwrap());
                }
                _ => {}
            }
            let hashes: std::collections::HashSet<&String> = alive.values().collect();
            if hashes.len() > 1 {
                return true;
            }
        }
        false
    });
    let restart = json!({"spec": {"template": {"metadata": {"annotations": {"x": "1"}}}}});
    deploys
        .patch("db", &PatchParams::default(), &Patch::Strategic(restart))
        .await
        .unwrap();
    rolled_out(&deploys, "db", 3).await;
    let running = active_pods(&pods, "db").await;
    assert!(running.iter().all(|p| hash_of(p) != old_hash));
    overlap.abort();
    assert!(!overlap.await.unwrap_or(false), "old and new pods existed at once");
}
