//! The 1000-address cap of an Endpoints object (upstream's
//! `truncateEndpoints` and `capacityAnnotationSetCorrectly`).

use std::collections::BTreeMap;

use ecm_types::wellknown::{ANNOTATION_OVER_CAPACITY, MAX_ENDPOINTS_ADDRESSES};
use k8s_openapi::api::core::v1::EndpointSubset;

fn count(list: Option<&Vec<k8s_openapi::api::core::v1::EndpointAddress>>) -> usize {
    list.map_or(0, Vec::len)
}

/// The number of addresses, ready and not ready, over all subsets.
pub(crate) fn total_addresses(subsets: &[EndpointSubset]) -> usize {
    subsets
        .iter()
        .map(|s| count(s.addresses.as_ref()) + count(s.not_ready_addresses.as_ref()))
        .sum()
}

/// Cuts `subsets` down to [`MAX_ENDPOINTS_ADDRESSES`] addresses; returns
/// whether anything was cut.
///
/// Ready addresses are kept first. When there are more than 1000 ready ones,
/// every subset keeps a share of the 1000 proportional to its ready count,
/// rounded up and capped by what is left (so the last subsets may get
/// less), and every not-ready address goes. Otherwise all ready addresses
/// stay and the not-ready ones share what is left the same way. Each subset
/// keeps the first addresses of its (sorted) lists.
pub(crate) fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let ready: usize = subsets.iter().map(|s| count(s.addresses.as_ref())).sum();
    let not_ready: usize = subsets.iter().map(|s| count(s.not_ready_addresses.as_ref())).sum();
    if ready + not_ready <= MAX_ENDPOINTS_ADDRESSES {
        return false;
    }
    let truncate_ready = ready > MAX_ENDPOINTS_ADDRESSES;
    let (budget, total) = if truncate_ready {
        (MAX_ENDPOINTS_ADDRESSES, ready)
    } else {
        (MAX_ENDPOINTS_ADDRESSES - ready, not_ready)
    };
    let mut left = budget;
    for subset in subsets {
        let list = if truncate_ready {
            &mut subset.addresses
        } else {
            &mut subset.not_ready_addresses
        };
        let in_subset = count(list.as_ref());
        // Upstream computes ceil(in_subset / total * budget) in floating point.
        let share = ((in_subset as f64 / total as f64) * budget as f64).ceil() as usize;
        let keep = share.min(left);
        if let Some(addresses) = list {
            addresses.truncate(keep);
        }
        left -= count(list.as_ref());
        // An emptied list is left out, as Go's `omitempty` leaves it out.
        if list.as_ref().is_some_and(Vec::is_empty) {
            *list = None;
        }
        if truncate_ready {
            subset.not_ready_addresses = None;
        }
    }
    true
}

/// Whether a stored object's over-capacity annotation is right: an object
/// holding more than [`MAX_ENDPOINTS_ADDRESSES`] addresses never is (it must
/// be truncated), otherwise the annotation must be absent. So an object that
/// was truncated is rewritten on every sync, as upstream does.
pub(crate) fn capacity_annotation_set_correctly(
    annotations: Option<&BTreeMap<String, String>>,
    subsets: &[EndpointSubset],
) -> bool {
    if total_addresses(subsets) > MAX_ENDPOINTS_ADDRESSES {
        return false;
    }
    !annotations.is_some_and(|a| a.contains_key(ANNOTATION_OVER_CAPACITY))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::EndpointAddress;

    fn addresses(n: usize, prefix: &str) -> Option<Vec<EndpointAddress>> {
        (n > 0).then(|| {
            (0..n)
                .map(|i| EndpointAddress {
                    ip: format!("{prefix}.{i}"),
                    ..EndpointAddress::default()
                })
                .collect()
        })
    }

    fn subsets(shape: &[(usize, usize)]) -> Vec<EndpointSubset> {
        shape
            .iter()
            .enumerate()
            .map(|(i, (ready, not_ready))| EndpointSubset {
                addresses: addresses(*ready, &format!("10.{i}")),
                not_ready_addresses: addresses(*not_ready, &format!("11.{i}")),
                ports: None,
            })
            .collect()
    }

    fn shape(subsets: &[EndpointSubset]) -> Vec<(usize, usize)> {
        subsets
            .iter()
            .map(|s| (count(s.addresses.as_ref()), count(s.not_ready_addresses.as_ref())))
            .collect()
    }

    /// Upstream's `TestTruncateEndpoints` table.
    #[test]
    fn truncation_shares_the_budget_proportionally() {
        let cases: [(&str, &[(usize, usize)], &[(usize, usize)]); 5] = [
            ("1 subset, ready only", &[(1000, 0)], &[(1000, 0)]),
            ("1 subset, 1001 ready", &[(1001, 0)], &[(1000, 0)]),
            ("1 subset, not ready cut first", &[(500, 501)], &[(500, 500)]),
            (
                "5 subsets, ready over capacity",
                &[(205, 0), (400, 0), (402, 0), (400, 0), (693, 0)],
                &[(98, 0), (191, 0), (192, 0), (191, 0), (328, 0)],
            ),
            (
                "3 subsets, not ready over capacity",
                &[(50, 10), (200, 600), (300, 500)],
                &[(50, 5), (200, 244), (300, 201)],
            ),
        ];
        for (name, input, want) in cases {
            let mut s = subsets(input);
            let over = input.iter().map(|(r, n)| r + n).sum::<usize>() > 1000;
            assert_eq!(truncate(&mut s), over, "{name}");
            assert_eq!(shape(&s), want, "{name}");
        }
    }

    #[test]
    fn ready_over_capacity_drops_every_not_ready_address() {
        let mut s = subsets(&[(600, 10), (600, 10)]);
        assert!(truncate(&mut s));
        assert_eq!(shape(&s), [(500, 0), (500, 0)]);
    }

    #[test]
    fn a_list_cut_to_nothing_is_left_out() {
        // The third subset's share of the 0 not-ready places left is 0.
        let mut s = subsets(&[(400, 0), (600, 5)]);
        assert!(truncate(&mut s));
        assert_eq!(
            s[1].not_ready_addresses, None,
            "not Some([]), which would serialize as []"
        );
        let mut s = subsets(&[(1001, 0), (0, 3)]);
        assert!(truncate(&mut s));
        assert_eq!(s[1].addresses, None);
        assert_eq!(s[1].not_ready_addresses, None);
    }

    #[test]
    fn kept_addresses_are_the_first_of_each_list() {
        let mut s = subsets(&[(1001, 0)]);
        truncate(&mut s);
        let kept = s[0].addresses.as_ref().unwrap();
        assert_eq!(kept.first().unwrap().ip, "10.0.0");
        assert_eq!(kept.last().unwrap().ip, "10.0.999");
    }

    #[test]
    fn annotation_correctness() {
        let over = BTreeMap::from([(ANNOTATION_OVER_CAPACITY.to_owned(), "truncated".to_owned())]);
        assert!(capacity_annotation_set_correctly(None, &subsets(&[(1000, 0)])));
        assert!(!capacity_annotation_set_correctly(Some(&over), &subsets(&[(1000, 0)])));
        assert!(!capacity_annotation_set_correctly(None, &subsets(&[(1001, 0)])));
        assert!(!capacity_annotation_set_correctly(Some(&over), &subsets(&[(600, 401)])));
    }
}
