//! The runs as the markdown table of docs/benchmarks.md.

use std::fmt::Write as _;

use super::results::Run;

/// `1234567` → `1 234 567` (the docs' thousands separator).
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn secs(s: Option<f64>) -> String {
    match s {
        Some(s) if s < 10.0 => format!("{s:.2} s"),
        Some(s) => format!("{s:.1} s"),
        None => "—".to_owned(),
    }
}

fn ms(m: Option<f64>) -> String {
    match m {
        Some(m) if m < 10.0 => format!("{m:.2}"),
        Some(m) => format!("{m:.0}"),
        None => "—".to_owned(),
    }
}

fn mb(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "—".to_owned(), |b| format!("{:.0} MB", b as f64 / 1e6))
}

/// One row per run, then the RSS growth per pod between one-namespace runs.
pub(crate) fn markdown(runs: &[Run]) -> String {
    let mut out = String::from(
        "| Services × pods (pods per namespace) | converge from nothing | CPU during start | writes at start \
         | idle CPU | churn p50 / p99 (slices) | Endpoints p99 | CPU per pod change | restart: writes, ready, idle after \
         | RSS converged / peak | RSS / pod |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in runs {
        let converge = if run.converged {
            secs(Some(run.converge_secs))
        } else {
            format!("not after {}", secs(Some(run.converge_secs)))
        };
        let behind = if run.drained { "" } else { " (not all seen)" };
        let restart = match run.restart_writes {
            Some(writes) => format!(
                "{writes}, {}, {}",
                secs(run.restart_ready_secs),
                secs(run.restart_idle_secs)
            ),
            None => "—".to_owned(),
        };
        let per_pod = run
            .rss_converged
            .filter(|_| run.pods > 0)
            .map_or_else(|| "—".to_owned(), |r| format!("{} B", thousands(r / run.pods)));
        let _ = writeln!(
            out,
            "| {} × {} ({}{}) | {converge} | {} | {} | {} | {} / {} ms{behind} | {} ms | {} ms | {restart} | {} / {} | {per_pod} |",
            thousands(run.services),
            run.pods_per_service,
            thousands(run.pods_per_namespace),
            if run.namespaces > 1 {
                format!(", {} namespaces", run.namespaces)
            } else {
                String::new()
            },
            secs(run.start_cpu_secs),
            thousands(run.start_writes),
            run.idle_cpu_per_sec
                .map_or_else(|| "—".to_owned(), |c| format!("{:.1} %", c * 100.0)),
            ms(run.slice_p50_ms),
            ms(run.slice_p99_ms),
            ms(run.endpoints_p99_ms),
            ms(run.cpu_per_change_ms),
            mb(run.rss_converged),
            mb(run.peak_rss),
        );
    }
    let single: Vec<&Run> = runs
        .iter()
        .filter(|r| r.namespaces == 1 && r.rss_converged.is_some())
        .collect();
    for pair in single.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if let (Some(ra), Some(rb)) = (a.rss_converged, b.rss_converged)
            && b.pods > a.pods
        {
            let growth = (rb as f64 - ra as f64) / (b.pods - a.pods) as f64;
            let _ = writeln!(
                out,
                "\nRSS growth from {} to {} pods: {growth:.0} bytes per pod.",
                thousands(a.pods),
                thousands(b.pods)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated_by_spaces() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(3_000), "3 000");
        assert_eq!(thousands(100_000), "100 000");
        assert_eq!(thousands(1_234_567), "1 234 567");
    }

    #[test]
    fn a_row_per_run_and_the_growth_between_them() {
        let small = Run {
            services: 300,
            pods_per_service: 10,
            pods: 3_000,
            namespaces: 1,
            pods_per_namespace: 3_000,
            converged: true,
            converge_secs: 0.5,
            drained: true,
            rss_converged: Some(30_000_000),
            restart_writes: Some(0),
            ..Run::default()
        };
        let large = Run {
            services: 3_000,
            pods: 30_000,
            pods_per_namespace: 30_000,
            rss_converged: Some(57_000_000),
            ..small.clone()
        };
        let table = markdown(&[small, large]);
        assert!(table.contains("| 300 × 10 (3 000) | 0.50 s |"), "{table}");
        assert!(table.contains("| 3 000 × 10 (30 000) |"), "{table}");
        assert!(
            table.contains("RSS growth from 3 000 to 30 000 pods: 1000 bytes per pod."),
            "{table}"
        );
    }
}
