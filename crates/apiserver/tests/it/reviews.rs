//! TokenReview and SubjectAccessReview over HTTP with a real `kube::Client`:
//! computed answers, nothing stored, rules replaced through the admin API.

use ecm_apiserver::{AuthConfig, Config, Policy};
use k8s_openapi::api::authentication::v1::TokenReview;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use kube::api::{Api, ListParams, PostParams};
use kube::discovery::{ApiResource, Discovery};
use serde_json::json;

use crate::{obj, start, status};

const PROMETHEUS: &str = "system:serviceaccount:monitoring:prometheus";

fn auth() -> AuthConfig {
    AuthConfig::default()
        .token("scraper-token", PROMETHEUS, ["system:serviceaccounts"])
        .token("nobody-token", "nobody", Vec::<String>::new())
        .allow(Policy::user_may_get(PROMETHEUS, "/metrics"))
}

fn token_review(token: &str) -> TokenReview {
    obj(json!({"spec": {"token": token}}))
}

fn metrics_review(user: &str) -> SubjectAccessReview {
    obj(json!({"spec": {"user": user, "nonResourceAttributes": {"path": "/metrics", "verb": "get"}}}))
}

#[tokio::test]
async fn reviews_answer_from_the_configured_tokens_and_rules() {
    let h = start(Config::default().auth(auth())).await;
    let tokens: Api<TokenReview> = Api::all(h.client.clone());
    let answer = tokens
        .create(&PostParams::default(), &token_review("scraper-token"))
        .await
        .unwrap();
    let status = answer.status.unwrap();
    assert_eq!(status.authenticated, Some(true));
    let user = status.user.unwrap();
    assert_eq!(user.username.as_deref(), Some(PROMETHEUS));
    assert!(user.groups.unwrap().contains(&"system:authenticated".to_owned()));
    let unknown = tokens
        .create(&PostParams::default(), &token_review("guess"))
        .await
        .unwrap();
    assert_eq!(unknown.status.unwrap().authenticated, Some(false));

    let access: Api<SubjectAccessReview> = Api::all(h.client.clone());
    let allowed = access
        .create(&PostParams::default(), &metrics_review(PROMETHEUS))
        .await
        .unwrap();
    assert!(allowed.status.unwrap().allowed);
    let denied = access
        .create(&PostParams::default(), &metrics_review("nobody"))
        .await
        .unwrap();
    assert!(!denied.status.unwrap().allowed);
    assert!(h.server.write_log().is_empty(), "reviews are not writes");
}

#[tokio::test]
async fn reviews_are_create_only_and_discoverable() {
    let h = start(Config::default()).await;
    let tokens: Api<TokenReview> = Api::all(h.client.clone());
    let err = tokens.list(&ListParams::default()).await.unwrap_err();
    assert_eq!(status(err).code, 405);
    let discovery = Discovery::new(h.client.clone()).run().await.unwrap();
    let find = |group: &str, kind: &str| {
        discovery
            .groups()
            .filter(|g| g.name() == group)
            .flat_map(kube::discovery::ApiGroup::recommended_resources)
            .find(|(r, _): &(ApiResource, _)| r.kind == kind)
    };
    let (_, caps) = find("authentication.k8s.io", "TokenReview").expect("TokenReview discovered");
    assert_eq!(caps.operations, ["create"]);
    assert!(find("authorization.k8s.io", "SubjectAccessReview").is_some());
}

#[tokio::test]
async fn the_admin_api_replaces_the_rules() {
    let h = start(Config::default()).await;
    let access: Api<SubjectAccessReview> = Api::all(h.client.clone());
    let (params, review) = (PostParams::default(), metrics_review(PROMETHEUS));
    let asked = || access.create(&params, &review);
    assert!(
        !asked().await.unwrap().status.unwrap().allowed,
        "nothing allowed by default"
    );

    let body = serde_json::to_vec(&auth()).unwrap();
    let request = http::Request::put("/ecm-admin/auth").body(body).unwrap();
    let answer: serde_json::Value = h.client.request(request).await.unwrap();
    assert_eq!(answer["tokens"].as_array().unwrap().len(), 2);
    assert_eq!(h.server.auth(), auth());
    assert!(asked().await.unwrap().status.unwrap().allowed);
}

/// Kills the child process when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_reads_kube_apiserver_token_and_policy_files() {
    let dir = std::env::temp_dir().join(format!("ecm-apiserver-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (tokens, policy, kubeconfig) = (dir.join("tokens.csv"), dir.join("policy.jsonl"), dir.join("kc"));
    std::fs::write(
        &tokens,
        format!("scraper-token,{PROMETHEUS},uid-1,\"system:serviceaccounts\"\n"),
    )
    .unwrap();
    let rule = json!({"apiVersion": "abac.authorization.kubernetes.io/v1beta1", "kind": "Policy",
                      "spec": {"user": PROMETHEUS, "nonResourcePath": "/metrics", "readonly": true}});
    std::fs::write(&policy, format!("{rule}\n")).unwrap();
    let _server = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_ecm-apiserver"))
            .args(["--listen", "127.0.0.1:0", "--log-level", "error"])
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .arg("--token-auth-file")
            .arg(&tokens)
            .arg("--authorization-policy-file")
            .arg(&policy)
            .spawn()
            .unwrap(),
    );
    let text = crate::eventually("the kubeconfig", || {
        let read = std::fs::read_to_string(&kubeconfig).ok();
        async move { read.filter(|t| t.contains("current-context")) }
    })
    .await;
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .unwrap()
        .to_owned();
    let client = kube::Client::try_from(kube::Config::new(server.parse().unwrap())).unwrap();
    let answer = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &token_review("scraper-token"))
        .await
        .unwrap();
    let user = answer.status.unwrap().user.unwrap();
    assert_eq!(user.username.as_deref(), Some(PROMETHEUS));
    assert_eq!(user.uid.as_deref(), Some("uid-1"));
    let access = Api::<SubjectAccessReview>::all(client)
        .create(&PostParams::default(), &metrics_review(PROMETHEUS))
        .await
        .unwrap();
    assert!(access.status.unwrap().allowed);
    let _ = std::fs::remove_dir_all(&dir);
}
