//! The Endpoints address of a pod, for one Service (upstream's
//! `podToEndpointAddressForService`).

use ecm_types::{IpFamily, PodProjection, service};
use k8s_openapi::api::core::v1::{EndpointAddress, ObjectReference, Service};

/// The address family a pod is published under for `svc`.
///
/// Endpoints carry one family only: `spec.ipFamilies[0]`, also for
/// dual-stack Services. A Service without `ipFamilies` — only ever seen from
/// API servers older than dual-stack — falls back to the family of its cluster
/// IP or, when it has none, to the family of each pod's `status.podIP`, so
/// such an Endpoints object may mix families.
pub(crate) fn address_family(svc: &Service, pod: &PodProjection) -> IpFamily {
    if let Some(first) = service::ip_families(svc).first() {
        // Upstream compares with "IPv6"; anything else means IPv4.
        return if first == "IPv6" { IpFamily::V6 } else { IpFamily::V4 };
    }
    if service::is_service_ip_set(svc) {
        return IpFamily::of_or_ipv4(service::cluster_ip(svc));
    }
    IpFamily::of_or_ipv4(pod.pod_ip.as_deref().unwrap_or_default())
}

/// The address of `pod` in the Endpoints of `svc`, or `None` when the pod has
/// no IP of the Service's family (it is then left out; the sync goes on).
///
/// The IP is the first `status.podIPs` entry of the family, copied as written;
/// `nodeName` is always set (empty when the pod is unscheduled); `targetRef`
/// names the pod by kind, namespace, name and uid; `hostname` is set only when
/// the pod's hostname/subdomain pair names this Service.
pub(crate) fn pod_address(svc: &Service, pod: &PodProjection) -> Option<EndpointAddress> {
    let family = address_family(svc, pod);
    let ip = pod.ips_of_family(family).next()?;
    let svc_namespace = svc.metadata.namespace.as_deref().unwrap_or_default();
    let svc_name = svc.metadata.name.as_deref().unwrap_or_default();
    let hostname = if pod.should_set_hostname(svc_namespace, svc_name) {
        pod.hostname.clone()
    } else {
        None
    };
    Some(EndpointAddress {
        ip: ip.to_owned(),
        hostname,
        node_name: Some(pod.node_name.clone().unwrap_or_default()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".to_owned()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..ObjectReference::default()
        }),
    })
}

#[cfg(test)]
mod tests {
    //! Upstream's `TestPodToEndpointAddressForService`, family case by family case.
    use super::*;
    use ecm_types::fixtures::{pod, service};

    fn ipv4_pod() -> PodProjection {
        pod("ns", "p").ips(&["1.2.3.4"]).projection()
    }
    fn ipv6_pod() -> PodProjection {
        pod("ns", "p").ips(&["2000::0"]).projection()
    }
    fn dual_pod() -> PodProjection {
        pod("ns", "p").ips(&["1.2.3.4", "2000::0"]).projection()
    }
    fn dual_pod_v6_first() -> PodProjection {
        pod("ns", "p").ips(&["2000::0", "1.2.3.4"]).projection()
    }

    #[test]
    fn family_and_ip_per_service_shape() {
        let v4 = || service("ns", "s").cluster_ip("10.0.0.1").ip_families(&["IPv4"]);
        let v6 = || service("ns", "s").cluster_ip("3000::1").ip_families(&["IPv6"]);
        let cases: Vec<(&str, Service, PodProjection, Option<&str>)> = vec![
            ("v4 service, v4 pod", v4().build(), ipv4_pod(), Some("1.2.3.4")),
            ("v4 service, dual pod", v4().build(), dual_pod(), Some("1.2.3.4")),
            (
                "v4 service, dual pod with v6 first",
                v4().build(),
                dual_pod_v6_first(),
                Some("1.2.3.4"),
            ),
            ("v4 service, v6 pod", v4().build(), ipv6_pod(), None),
            ("v6 service, v6 pod", v6().build(), ipv6_pod(), Some("2000::0")),
            ("v6 service, dual pod", v6().build(), dual_pod(), Some("2000::0")),
            ("v6 service, v4 pod", v6().build(), ipv4_pod(), None),
            (
                "v4 headless, dual pod",
                v4().headless().build(),
                dual_pod(),
                Some("1.2.3.4"),
            ),
            (
                "v6 headless, dual pod",
                v6().headless().build(),
                dual_pod(),
                Some("2000::0"),
            ),
            (
                "dual-stack v4-first service",
                v4().ip_families(&["IPv4", "IPv6"]).build(),
                dual_pod_v6_first(),
                Some("1.2.3.4"),
            ),
            (
                "dual-stack v6-first service",
                v6().ip_families(&["IPv6", "IPv4"]).build(),
                dual_pod(),
                Some("2000::0"),
            ),
            (
                "legacy v4 cluster IP, no families",
                v4().ip_families(&[]).build(),
                dual_pod_v6_first(),
                Some("1.2.3.4"),
            ),
            (
                "legacy v6 cluster IP, no families",
                v6().ip_families(&[]).build(),
                dual_pod(),
                Some("2000::0"),
            ),
            (
                "legacy headless, v4 primary pod IP",
                v4().headless().ip_families(&[]).build(),
                dual_pod(),
                Some("1.2.3.4"),
            ),
            (
                "legacy headless, v6 primary pod IP",
                v4().headless().ip_families(&[]).build(),
                dual_pod_v6_first(),
                Some("2000::0"),
            ),
            (
                "legacy empty cluster IP, v6 primary",
                v4().cluster_ip("").ip_families(&[]).build(),
                ipv6_pod(),
                Some("2000::0"),
            ),
        ];
        for (name, svc, p, want) in cases {
            assert_eq!(pod_address(&svc, &p).map(|a| a.ip), want.map(str::to_owned), "{name}");
        }
    }

    #[test]
    fn address_fields() {
        let svc = service("ns", "web").build();
        let p = pod("ns", "web-0")
            .ip("10.0.0.1")
            .node("node-a")
            .hostname("web-0")
            .subdomain("web")
            .projection();
        let address = pod_address(&svc, &p).unwrap();
        assert_eq!(address.node_name.as_deref(), Some("node-a"));
        assert_eq!(address.hostname.as_deref(), Some("web-0"));
        let target = address.target_ref.unwrap();
        assert_eq!(
            (
                target.kind.as_deref(),
                target.namespace.as_deref(),
                target.name.as_deref(),
                target.uid.as_deref()
            ),
            (Some("Pod"), Some("ns"), Some("web-0"), Some("uid-web-0"))
        );
        assert_eq!(
            (target.resource_version, target.api_version, target.field_path),
            (None, None, None)
        );

        let unscheduled = pod("ns", "x")
            .ip("10.0.0.2")
            .subdomain("other")
            .hostname("x")
            .projection();
        let address = pod_address(&svc, &unscheduled).unwrap();
        assert_eq!(address.node_name.as_deref(), Some(""), "nodeName is always set");
        assert_eq!(address.hostname, None, "subdomain names another service");
    }
}
