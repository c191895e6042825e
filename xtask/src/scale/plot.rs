//! The plot of docs/benchmarks.md: ecm's CPU time per pod change (left)
//! and the churn's p99 EndpointSlice latency (right) against the pods in
//! one namespace (both axes log scale): Services of 10 pods in one namespace as a
//! line, spread over namespaces and large Services (more than 10 pods
//! each) as separate points. Drawn with plotters' bitmap backend;
//! text uses DejaVu Sans, embedded (the `dejavu` crate) and rendered by
//! `ab_glyph`, so no system font or fontconfig is needed.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use super::results::Run;

const FONT: &str = "sans-serif";
const ONE: RGBColor = RGBColor(31, 119, 180);
const SPREAD: RGBColor = RGBColor(214, 39, 40);
const LARGE: RGBColor = RGBColor(44, 160, 44);

/// Which series a run belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Series {
    /// Services of 10 pods (or fewer) in one namespace.
    One,
    /// Spread over namespaces.
    Spread,
    /// Services of more than 10 pods.
    Large,
}

fn series(run: &Run) -> Series {
    if run.pods_per_service > 10 {
        Series::Large
    } else if run.namespaces > 1 {
        Series::Spread
    } else {
        Series::One
    }
}

/// Labels 1, 2, 3 and 5 of each decade (`3k`, `100k`); the other
/// log-scale ticks stay unlabelled so the labels do not overlap.
fn log_label(x: f64) -> String {
    let decade = 10f64.powf(x.log10().floor());
    let mantissa = (x / decade).round() as u32;
    if [1, 2, 3, 5].contains(&mantissa) {
        let k = (x / 1000.0).round();
        if k >= 1.0 {
            format!("{k}k")
        } else {
            format!("{}", x.round())
        }
    } else {
        String::new()
    }
}

/// Labels 1, 2 and 5 of each decade on the y axis (`0.5`, `2`, `100`).
fn y_label(y: f64) -> String {
    let decade = 10f64.powf(y.log10().floor());
    let mantissa = (y / decade).round() as u32;
    if [1, 2, 5].contains(&mantissa) {
        let nice = f64::from(mantissa) * decade;
        if nice >= 1.0 {
            format!("{nice:.0}")
        } else {
            format!("{nice}")
        }
    } else {
        String::new()
    }
}

/// One panel: `value` of each run against its pods per namespace.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    runs: &[Run],
    title: &str,
    y_desc: &str,
    value: fn(&Run) -> Option<f64>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let points = |which: Series| -> Vec<(f64, f64)> {
        runs.iter()
            .filter(|r| series(r) == which)
            .filter_map(|r| value(r).map(|v| (r.pods_per_namespace as f64, v)))
            .collect()
    };
    let (single, spread, large) = (points(Series::One), points(Series::Spread), points(Series::Large));
    let all = || single.iter().chain(&spread).chain(&large);
    let x_min = all().map(|p| p.0).fold(f64::INFINITY, f64::min).min(1_000.0) * 0.8;
    let x_max = all().map(|p| p.0).fold(0.0, f64::max).max(10_000.0) * 1.25;
    // Log scale on y too: large Services cost ten times more than small ones.
    let y_min = all().map(|p| p.1).fold(f64::INFINITY, f64::min).clamp(1e-3, 1.0) * 0.5;
    let y_max = all().map(|p| p.1).fold(0.0, f64::max).max(y_min * 4.0) * 2.0;
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("plot: {e:?}");
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d((x_min..x_max).log_scale(), (y_min..y_max).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("pods in the namespace")
        .y_desc(y_desc)
        .light_line_style(WHITE)
        .x_label_formatter(&|x| log_label(*x))
        .y_label_formatter(&|y| y_label(*y))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(single.clone(), ONE.stroke_width(2)))
        .map_err(err)?
        .label("Services in one namespace")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], ONE.stroke_width(2)));
    chart
        .draw_series(single.iter().map(|p| Circle::new(*p, 5, ONE.filled())))
        .map_err(err)?;
    chart
        .draw_series(spread.iter().map(|p| TriangleMarker::new(*p, 7, SPREAD.filled())))
        .map_err(err)?
        .label("spread over namespaces")
        .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, SPREAD.filled()));
    if !large.is_empty() {
        chart
            .draw_series(
                large
                    .iter()
                    .map(|p| EmptyElement::at(*p) + Rectangle::new([(-6, -6), (6, 6)], LARGE.filled())),
            )
            .map_err(err)?
            .label(format!(
                "Services of {} pods",
                runs.iter().map(|r| r.pods_per_service).max().unwrap_or(0)
            ))
            .legend(|(x, y)| Rectangle::new([(x + 5, y - 5), (x + 15, y + 5)], LARGE.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Draws the two panels of `runs` into the PNG `path`.
pub(crate) fn draw(runs: &[Run], path: &Path) -> Result<()> {
    // Registering twice is harmless (the second replaces the first).
    plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| anyhow!("the embedded DejaVu Sans is not a valid font"))?;
    let root = BitMapBackend::new(path, (1400, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("plot: {e:?}"))?;
    let (left, right) = root.split_horizontally(700);
    panel(
        &left,
        runs,
        "ecm CPU per pod readiness change",
        "CPU ms per change",
        |r| r.cpu_per_change_ms,
    )?;
    panel(
        &right,
        runs,
        "Churn latency, p99 (EndpointSlice)",
        "ms from status write to slice",
        |r| r.slice_p99_ms,
    )?;
    root.present()
        .map_err(|e| anyhow!("plot: cannot write {}: {e:?}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_png_with_text() {
        let run = |services: u64, namespaces: u64, cpu: f64| Run {
            services,
            pods_per_service: 10,
            pods: services * 10,
            namespaces,
            pods_per_namespace: services * 10 / namespaces,
            cpu_per_change_ms: Some(cpu),
            slice_p99_ms: Some(cpu * 3.0),
            ..Run::default()
        };
        let large = Run {
            pods_per_service: 1_000,
            pods: 30_000,
            pods_per_namespace: 30_000,
            ..run(30, 1, 9.0)
        };
        let runs = [run(300, 1, 1.0), run(3_000, 1, 2.0), run(3_000, 30, 1.1), large];
        let dir = std::env::temp_dir().join(format!("xtask-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("plot.png");
        draw(&runs, &path).expect("drawn");
        let bytes = std::fs::read(&path).expect("written");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }
}
