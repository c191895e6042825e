//! Resolving a Service port's `targetPort` against a pod (upstream's
//! `FindPort`).

use k8s_openapi::api::core::v1::ServicePort;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::pod::PodProjection;
use crate::wellknown::DEFAULT_PROTOCOL;

/// The protocol of a Service port, `TCP` when unset (the API server's
/// default).
pub fn service_port_protocol(port: &ServicePort) -> &str {
    port.protocol.as_deref().unwrap_or(DEFAULT_PROTOCOL)
}

/// The port number a pod serves `service_port` on, or `None` when the pod
/// does not expose it.
///
/// - A numeric `targetPort` is used as is, without looking at the pod.
/// - A named `targetPort` is looked up among the pod's named container ports
///   (app containers first, then native sidecars) for the first one with that
///   name and the Service port's protocol. So two pods may serve one Service
///   port on different numbers, and a pod without the name serves nothing.
/// - A missing, zero or empty `targetPort` means the Service `port` itself, as
///   the API server defaults it on write.
///
/// ```
/// use ecm_types::find_port;
/// use k8s_openapi::api::core::v1::ServicePort;
/// use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
/// let port = ServicePort { port: 80, target_port: Some(IntOrString::Int(8080)), ..Default::default() };
/// assert_eq!(find_port(&Default::default(), &port), Some(8080));
/// ```
pub fn find_port(pod: &PodProjection, service_port: &ServicePort) -> Option<i32> {
    match &service_port.target_port {
        Some(IntOrString::Int(number)) if *number != 0 => Some(*number),
        Some(IntOrString::String(name)) if !name.is_empty() => {
            let protocol = service_port_protocol(service_port);
            pod.named_ports
                .iter()
                .find(|p| p.name == *name && p.protocol == protocol)
                .map(|p| p.container_port)
        }
        _ => Some(service_port.port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::pod;

    fn named(target: &str, protocol: &str) -> ServicePort {
        ServicePort {
            port: 80,
            target_port: Some(IntOrString::String(target.to_owned())),
            protocol: Some(protocol.to_owned()),
            ..ServicePort::default()
        }
    }

    #[test]
    fn numeric_target_port_is_used_verbatim() {
        let port = ServicePort {
            port: 80,
            target_port: Some(IntOrString::Int(9376)),
            ..ServicePort::default()
        };
        assert_eq!(find_port(&pod("ns", "p").projection(), &port), Some(9376));
    }

    #[test]
    fn missing_zero_or_empty_target_port_means_the_service_port() {
        for target in [
            None,
            Some(IntOrString::Int(0)),
            Some(IntOrString::String(String::new())),
        ] {
            let port = ServicePort {
                port: 443,
                target_port: target.clone(),
                ..ServicePort::default()
            };
            assert_eq!(find_port(&pod("ns", "p").projection(), &port), Some(443), "{target:?}");
        }
    }

    #[test]
    fn named_target_port_resolves_per_pod() {
        let a = pod("ns", "a").container_port("http", 8080, "TCP").projection();
        let b = pod("ns", "b").container_port("http", 9090, "TCP").projection();
        let port = named("http", "TCP");
        assert_eq!(find_port(&a, &port), Some(8080));
        assert_eq!(find_port(&b, &port), Some(9090));
    }

    #[test]
    fn named_target_port_no_container_exposes_gives_no_port() {
        let p = pod("ns", "p").container_port("metrics", 9100, "TCP").projection();
        assert_eq!(find_port(&p, &named("http", "TCP")), None);
    }

    #[test]
    fn named_target_port_must_match_protocol() {
        let p = pod("ns", "p").container_port("dns", 53, "UDP").projection();
        assert_eq!(find_port(&p, &named("dns", "TCP")), None);
        assert_eq!(find_port(&p, &named("dns", "UDP")), Some(53));
        let mut unset = named("dns", "UDP");
        unset.protocol = None;
        assert_eq!(find_port(&p, &unset), None, "an unset protocol is TCP");
    }

    #[test]
    fn first_container_in_order_wins() {
        let p = pod("ns", "p")
            .container_port("http", 8080, "TCP")
            .extra_container_port("http", 8081, "TCP")
            .projection();
        assert_eq!(find_port(&p, &named("http", "TCP")), Some(8080));
    }

    #[test]
    fn sidecar_init_containers_are_searched_after_app_containers() {
        let only_sidecar = pod("ns", "p")
            .init_container_port("proxy", 15001, "TCP", true)
            .projection();
        assert_eq!(find_port(&only_sidecar, &named("proxy", "TCP")), Some(15001));
        let both = pod("ns", "p")
            .init_container_port("proxy", 15001, "TCP", true)
            .container_port("proxy", 8001, "TCP")
            .projection();
        assert_eq!(find_port(&both, &named("proxy", "TCP")), Some(8001));
    }

    #[test]
    fn plain_init_containers_are_not_searched() {
        let p = pod("ns", "p")
            .init_container_port("setup", 7000, "TCP", false)
            .projection();
        assert_eq!(find_port(&p, &named("setup", "TCP")), None);
    }
}
