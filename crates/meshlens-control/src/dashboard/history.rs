//! History charts of a workload (requests per second, success, p99 of what it served) from the metric
//! store: 30 steps over at least 15 minutes, each a small inline SVG line.

use std::fmt::Write;

use super::Window;
use super::html::esc;
use crate::metricstore::Family;
use crate::statsapi;

const POINTS: u64 = 30;
/// The size of a chart.
const W: f64 = 300.0;
const H: f64 = 70.0;

/// One step's numbers; `None` where the store holds nothing (or no request).
#[derive(Clone, Copy, Debug, Default)]
struct Point {
    rps: Option<f64>,
    success: Option<f64>,
    p99_ms: Option<f64>,
}

pub(super) fn render(body: &mut String, w: &Window, ns: &str, name: &str) {
    let interval = w.store.settings().interval_ms.max(1);
    let window = statsapi::window_ms(Some(&w.window), interval).unwrap_or(60_000);
    let step = (window.max(15 * 60_000) / POINTS).max(interval);
    let points: Vec<Point> = (0..POINTS)
        .rev()
        .map(|i| {
            let end = w.end.saturating_sub(i * step);
            let covered = w.store.covered(end, step);
            if covered == 0 {
                return Point::default();
            }
            let served = |k: &crate::metricstore::Key| {
                (k.family == Family::Http && !k.outbound && k.namespace == ns && k.workload == name).then_some(())
            };
            let t = w.store.query(end, step, served).remove(&()).unwrap_or_default();
            Point {
                rps: Some(t.requests() / (covered as f64 / 1000.0)),
                success: t.success_rate(),
                p99_ms: t.quantile(0.99),
            }
        })
        .collect();
    let _ = write!(
        body,
        "<h2>History</h2><p class=\"cli\">the last {} min in steps of {} s (inbound)</p><div class=\"charts\">",
        step * POINTS / 60_000,
        step / 1000
    );
    chart(body, "RPS", &points.iter().map(|p| p.rps).collect::<Vec<_>>(), |v| format!("{v:.1}"));
    chart(body, "success", &points.iter().map(|p| p.success).collect::<Vec<_>>(), |v| format!("{:.2}%", v * 100.0));
    chart(body, "p99", &points.iter().map(|p| p.p99_ms).collect::<Vec<_>>(), |v| format!("{v:.0}ms"));
    body.push_str("</div>");
}

/// A line chart of `values` (gaps where `None`), labelled with its last value and its range.
fn chart(body: &mut String, title: &str, values: &[Option<f64>], fmt: impl Fn(f64) -> String) {
    let known: Vec<f64> = values.iter().flatten().copied().collect();
    let (lo, hi) = known.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
    let last = values.iter().rev().flatten().next().map(|v| fmt(*v)).unwrap_or_else(|| "-".into());
    let _ = write!(
        body,
        "<figure class=\"chart\" data-chart=\"{}\"><figcaption>{} <b>{}</b> <small>{}</small></figcaption>\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\">",
        esc(title),
        esc(title),
        esc(&last),
        if known.is_empty() { "no data".to_string() } else { format!("{} – {}", fmt(lo), fmt(hi)) }
    );
    let span = if hi > lo { hi - lo } else { 1.0 };
    let n = values.len().max(2) as f64 - 1.0;
    // Runs of known values, each a polyline (a lone point drawn as a short dash).
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                let x = i as f64 / n * (W - 4.0) + 2.0;
                let y = H - 4.0 - (v - lo) / span * (H - 8.0);
                runs.last_mut().expect("one run at least").push((x, y));
            }
            None => runs.push(Vec::new()),
        }
    }
    for run in runs.iter_mut().filter(|r| !r.is_empty()) {
        if let [(x, y)] = run[..] {
            run.push((x + 3.0, y));
        }
        let points: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = write!(body, "<polyline points=\"{}\"/>", points.join(" "));
    }
    body.push_str("</svg></figure>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_split_the_line_and_a_lone_point_shows() {
        let mut body = String::new();
        chart(&mut body, "RPS", &[Some(1.0), Some(2.0), None, Some(3.0), None], |v| format!("{v:.1}"));
        assert_eq!(body.matches("<polyline").count(), 2, "{body}");
        assert!(body.contains("<b>3.0</b> <small>1.0 – 3.0</small>"), "{body}");
        let mut empty = String::new();
        chart(&mut empty, "p99", &[None, None], |v| format!("{v}"));
        assert!(!empty.contains("<polyline") && empty.contains("no data"), "{empty}");
    }
}
