//! Polling with a deadline: `assert_eventually!`, [`eventually`], and the patience setting.

use std::time::{Duration, Instant};

/// Environment variable overriding the default patience (seconds, may be fractional).
pub const PATIENCE_ENV: &str = "MESHLENS_TEST_PATIENCE_SECS";

const DEFAULT_PATIENCE: Duration = Duration::from_secs(20);
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// How long to wait for a condition before failing: 20 s, or `MESHLENS_TEST_PATIENCE_SECS`.
pub fn patience() -> Duration {
    std::env::var(PATIENCE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(DEFAULT_PATIENCE, Duration::from_secs_f64)
}

/// The polling schedule behind [`assert_eventually!`]: a deadline plus a 10 → 100 ms backoff.
///
/// The deadline is measured on the real clock (`std::time::Instant`), so a test running with a
/// paused tokio clock does not time out early while it waits on real sockets.
#[derive(Debug)]
pub struct Poller {
    started: Instant,
    patience: Duration,
    backoff: Duration,
}

impl Default for Poller {
    fn default() -> Self {
        Self::new()
    }
}

impl Poller {
    /// A poller with the configured [`patience`].
    pub fn new() -> Self {
        Self::with_patience(patience())
    }

    /// A poller with an explicit deadline.
    pub fn with_patience(patience: Duration) -> Self {
        Self { started: Instant::now(), patience, backoff: FIRST_BACKOFF }
    }

    /// The deadline this poller was given.
    pub fn patience(&self) -> Duration {
        self.patience
    }

    /// Time since the poller started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The next pause, or `None` when the deadline has passed.
    fn next_pause(&mut self) -> Option<Duration> {
        let left = self.patience.checked_sub(self.started.elapsed())?;
        if left.is_zero() {
            return None;
        }
        let pause = self.backoff.min(left);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Some(pause)
    }

    /// Waits before the next poll (async); returns `false` once the deadline has passed.
    pub async fn wait(&mut self) -> bool {
        match self.next_pause() {
            Some(pause) => {
                tokio::time::sleep(pause).await;
                true
            }
            None => false,
        }
    }

    /// Waits before the next poll, blocking the thread; returns `false` once the deadline has passed.
    pub fn wait_blocking(&mut self) -> bool {
        match self.next_pause() {
            Some(pause) => {
                std::thread::sleep(pause);
                true
            }
            None => false,
        }
    }
}

/// Polls `cond` until it returns `true`; panics with `what` after [`patience`].
///
/// ```no_run
/// # async fn t(backend: meshlens_testkit::HttpBackend) {
/// meshlens_testkit::eventually(async || backend.requests() == 3, "backend saw 3 requests").await;
/// # }
/// ```
pub async fn eventually(mut cond: impl AsyncFnMut() -> bool, what: &str) {
    let mut poller = Poller::new();
    loop {
        if cond().await {
            return;
        }
        if !poller.wait().await {
            panic!("not true within {:?}: {what}", poller.patience());
        }
    }
}

/// [`eventually`] for synchronous code (whole-binary tests): blocks the thread between polls.
///
/// Don't call it from inside a tokio runtime whose tasks the condition depends on.
pub fn eventually_blocking(mut cond: impl FnMut() -> bool, what: &str) {
    let mut poller = Poller::new();
    loop {
        if cond() {
            return;
        }
        if !poller.wait_blocking() {
            panic!("not true within {:?}: {what}", poller.patience());
        }
    }
}

/// Asserts that a condition becomes true within [`patience`](crate::patience), polling with backoff.
///
/// Use inside `async` code: the condition may itself `.await`. Panics with the condition's text,
/// or with the given message, on timeout.
///
/// ```no_run
/// # async fn t(backend: meshlens_testkit::HttpBackend, n: usize) {
/// use meshlens_testkit::assert_eventually;
/// assert_eventually!(backend.requests() == 1);
/// assert_eventually!(backend.requests() >= n, "backend saw {} of {n}", backend.requests());
/// # }
/// ```
#[macro_export]
macro_rules! assert_eventually {
    ($cond:expr $(,)?) => {
        $crate::assert_eventually!($cond, "{}", ::core::stringify!($cond))
    };
    ($cond:expr, $($arg:tt)+) => {{
        let mut __meshlens_poller = $crate::eventually::Poller::new();
        loop {
            if $cond {
                break;
            }
            if !__meshlens_poller.wait().await {
                ::core::panic!(
                    "assertion not true within {:?}: {}",
                    __meshlens_poller.patience(),
                    ::core::format_args!($($arg)+)
                );
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn backoff_grows_to_100ms_and_stops_at_deadline() {
        let mut p = Poller::with_patience(Duration::from_secs(3600));
        let pauses: Vec<_> = (0..6).map(|_| p.next_pause().unwrap().as_millis()).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 100, 100]);
        let mut p = Poller::with_patience(Duration::ZERO);
        assert_eq!(p.next_pause(), None);
    }

    #[tokio::test]
    async fn macro_polls_until_true() {
        let n = Arc::new(AtomicUsize::new(0));
        let counter = n.clone();
        let bump = tokio::spawn(async move {
            for _ in 0..3 {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        });
        assert_eventually!(n.load(Ordering::SeqCst) == 3);
        assert_eventually!(n.load(Ordering::SeqCst) == 3, "n = {}", n.load(Ordering::SeqCst));
        eventually(async || n.load(Ordering::SeqCst) == 3, "n reaches 3").await;
        eventually(|| async { n.load(Ordering::SeqCst) == 3 }, "n reaches 3").await;
        bump.await.unwrap();
    }

    #[test]
    #[should_panic(expected = "never")]
    fn blocking_panics_with_message() {
        let mut p = Poller::with_patience(Duration::from_millis(30));
        loop {
            if !p.wait_blocking() {
                panic!("never");
            }
        }
    }
}
