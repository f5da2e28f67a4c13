//! One reading of every proxy's balancers (admin `/endpoints`) shared by all workload pages for a while:
//! however many viewers refresh, each proxy is asked at most once per [`FRESH_FOR`].

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::diagnostics::CallerBalancers;

/// How long one reading serves: a little under the pages' 5 s refresh, so each refresh sees a new one.
pub(super) const FRESH_FOR: Duration = Duration::from_secs(4);

/// The last reading and when it was taken; concurrent readers wait for one fetch instead of each fetching.
#[derive(Default)]
pub(super) struct SharedReading {
    last: Mutex<Option<(Instant, Arc<Vec<CallerBalancers>>)>>,
}

impl SharedReading {
    /// The reading taken at most [`FRESH_FOR`] before `now`, else a new one from `fetch`.
    pub(super) async fn get<F>(&self, now: Instant, fetch: impl FnOnce() -> F) -> Arc<Vec<CallerBalancers>>
    where
        F: Future<Output = Vec<CallerBalancers>>,
    {
        let mut last = self.last.lock().await;
        if let Some((taken, reading)) = last.as_ref()
            && now.saturating_duration_since(*taken) < FRESH_FOR
        {
            return reading.clone();
        }
        let reading = Arc::new(fetch().await);
        *last = Some((now, reading.clone()));
        reading
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn caller(pod: &str) -> CallerBalancers {
        let (namespace, workload, pod) = ("prod".into(), "checkout".into(), pod.into());
        CallerBalancers { namespace, workload, pod, balancers: Err("not asked".into()) }
    }

    #[tokio::test]
    async fn many_viewers_share_one_fetch_per_period() {
        let reading = SharedReading::default();
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            let n = fetches.fetch_add(1, Ordering::SeqCst);
            vec![caller(&format!("checkout-{n}"))]
        };
        let start = Instant::now();

        // 20 viewers at once, then 20 more within the period: one fetch.
        let first = futures_util::future::join_all((0..20).map(|_| reading.get(start, fetch))).await;
        assert!(first.iter().all(|r| r[0].pod == "checkout-0"));
        for i in 0..20 {
            let r = reading.get(start + FRESH_FOR * i / 20, fetch).await;
            assert_eq!(r[0].pod, "checkout-0");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        // The next period: one more fetch, whatever the number of viewers.
        for _ in 0..20 {
            let r = reading.get(start + FRESH_FOR, fetch).await;
            assert_eq!(r[0].pod, "checkout-1");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }
}
