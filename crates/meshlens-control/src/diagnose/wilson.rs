//! Wilson score intervals (Agresti & Coull 1998): a success rate with its uncertainty, so a handful of
//! requests never makes a finding.

/// z for the intervals: ~99.7% two-sided, strict enough for a few dozen workloads, edges and instances
/// tested at once.
pub(crate) const Z: f64 = 3.0;

/// The (lower, upper) bounds of a proportion `k` of `n`; (0, 1) without data.
pub(crate) fn interval(k: f64, n: f64) -> (f64, f64) {
    if n <= 0.0 {
        return (0.0, 1.0);
    }
    let p = (k / n).clamp(0.0, 1.0);
    let z2 = Z * Z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Fewer requests than this in a window never make a success-rate finding, whatever the interval says.
pub(crate) const MIN_REQUESTS: f64 = 50.0;
/// Nor do fewer failures than this.
pub(crate) const MIN_FAILURES: f64 = 5.0;

/// True when `failed` of `n` is surely above the failure rate `1 - objective` allows, on enough requests.
pub(crate) fn below_objective(failed: f64, n: f64, objective: f64) -> bool {
    n >= MIN_REQUESTS && failed >= MIN_FAILURES && interval(failed, n).0 > 1.0 - objective
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_requests_prove_nothing_many_do() {
        // 1 failure in 10, 6 in 18: too few requests to say.
        assert!(!below_objective(1.0, 10.0, 0.995));
        assert!(!below_objective(6.0, 18.0, 0.995));
        // 4 failures in 10 000 requests: within the objective; 5 in 200 are not.
        assert!(below_objective(5.0, 200.0, 0.995));
        // 15% of 600: surely below 99.5%.
        assert!(below_objective(90.0, 600.0, 0.995));
        // 0.4% of 10 000 is within the objective.
        assert!(!below_objective(40.0, 10_000.0, 0.995));
        let (lo, hi) = interval(0.0, 0.0);
        assert_eq!((lo, hi), (0.0, 1.0));
        let (lo, hi) = interval(50.0, 100.0);
        assert!(lo < 0.5 && hi > 0.5 && lo > 0.3 && hi < 0.7);
    }
}
