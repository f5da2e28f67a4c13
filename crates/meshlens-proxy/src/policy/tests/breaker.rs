use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::advance;

use super::{BreakerParams, BreakerState, ConsecutiveFailures, Transition};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Defaults without jitter: penalties are exactly 1 s, 2 s, 4 s, ... 60 s.
fn exact() -> ConsecutiveFailures {
    ConsecutiveFailures::new(BreakerParams { jitter: 0.0, ..Default::default() })
}

fn fail_n(b: &ConsecutiveFailures, n: u32) -> Option<Transition> {
    let mut last = None;
    for _ in 0..n {
        assert!(b.admits());
        last = b.record(false);
    }
    last
}

#[test]
fn defaults_are_linkerds() {
    let p = BreakerParams::default();
    assert_eq!((p.max_failures, p.min_penalty, p.max_penalty, p.jitter), (7, secs(1), secs(60), 0.5));
    assert!(p.validate().is_ok());
}

#[tokio::test(start_paused = true)]
async fn closed_until_max_consecutive_failures() {
    let b = exact();
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(fail_n(&b, 6), None);
    assert_eq!(b.consecutive_failures(), 6);
    // A success resets the count.
    assert!(b.admits());
    assert_eq!(b.record(true), None);
    assert_eq!(b.consecutive_failures(), 0);
    assert_eq!(fail_n(&b, 6), None);
    assert_eq!(b.state(), BreakerState::Closed);
    // The 7th consecutive failure opens it.
    assert_eq!(fail_n(&b, 1), Some(Transition::Opened { penalty: secs(1) }));
    assert_eq!(b.state(), BreakerState::Open { remaining_ms: 1000 });
    assert!(!b.admits());
    assert_eq!(b.transitions.opened.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn open_admits_nothing_and_ignores_stragglers() {
    let b = exact();
    fail_n(&b, 7);
    advance(ms(400)).await;
    assert_eq!(b.state(), BreakerState::Open { remaining_ms: 600 });
    assert!(!b.admits());
    // Responses of requests admitted before it opened change nothing.
    assert_eq!(b.record(true), None);
    assert_eq!(b.record(false), None);
    assert_eq!(b.state(), BreakerState::Open { remaining_ms: 600 });
    advance(ms(599)).await;
    assert!(!b.admits());
}

#[tokio::test(start_paused = true)]
async fn probation_admits_exactly_one_and_success_closes() {
    let b = exact();
    fail_n(&b, 7);
    advance(secs(1)).await;
    assert_eq!(b.state(), BreakerState::Probation);
    assert_eq!(b.transitions.probation.load(Ordering::Relaxed), 1);
    // A straggler before the probe is admitted does not decide.
    assert_eq!(b.record(false), None);
    assert_eq!(b.state(), BreakerState::Probation);
    assert!(b.admits(), "the probe");
    assert!(!b.admits(), "only one probe");
    assert!(!b.admits());
    assert_eq!(b.record(true), Some(Transition::Closed));
    assert_eq!(b.state(), BreakerState::Closed);
    assert!(b.admits() && b.admits());
    assert_eq!(b.transitions.closed.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn failed_probation_reopens_with_exponential_backoff_capped() {
    let b = exact();
    assert_eq!(fail_n(&b, 7), Some(Transition::Opened { penalty: secs(1) }));
    let mut expected = vec![2, 4, 8, 16, 32, 60, 60];
    let mut penalty = secs(1);
    for next in expected.drain(..) {
        advance(penalty).await;
        assert!(b.admits(), "probe after {penalty:?}");
        assert_eq!(b.record(false), Some(Transition::Opened { penalty: secs(next) }));
        assert_eq!(b.state(), BreakerState::Open { remaining_ms: next * 1000 });
        penalty = secs(next);
    }
    // Success closes and resets the backoff: the next trip starts at 1 s again.
    advance(penalty).await;
    assert!(b.admits());
    assert_eq!(b.record(true), Some(Transition::Closed));
    assert_eq!(fail_n(&b, 7), Some(Transition::Opened { penalty: secs(1) }));
    assert_eq!(b.transitions.opened.load(Ordering::Relaxed), 9);
    assert_eq!(b.transitions.probation.load(Ordering::Relaxed), 8);
    assert_eq!(b.transitions.closed.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn after_closing_failures_count_from_zero() {
    let b = exact();
    fail_n(&b, 7);
    advance(secs(1)).await;
    assert!(b.admits());
    b.record(true);
    assert_eq!(fail_n(&b, 6), None);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn jitter_stays_within_half_the_base_and_the_max() {
    let params = BreakerParams::default();
    for seed in 0..50 {
        let b = ConsecutiveFailures::with_rng(params, fastrand::Rng::with_seed(seed));
        let Some(Transition::Opened { penalty }) = fail_n(&b, 7) else { panic!("did not open") };
        assert!((secs(1)..=ms(1500)).contains(&penalty), "{penalty:?}");
        // Deep into the backoff the cap holds, jitter included.
        let mut penalty = penalty;
        for _ in 0..8 {
            advance(penalty).await;
            assert!(b.admits());
            let Some(Transition::Opened { penalty: p }) = b.record(false) else { panic!("did not reopen") };
            assert!(p <= secs(60), "{p:?}");
            penalty = p;
        }
        assert_eq!(penalty, secs(60), "base 60 s leaves no room for jitter");
    }
    // Jitter actually varies the penalty.
    let penalties: std::collections::BTreeSet<_> = (0..20)
        .map(|seed| {
            let b = ConsecutiveFailures::with_rng(params, fastrand::Rng::with_seed(seed));
            match fail_n(&b, 7) {
                Some(Transition::Opened { penalty }) => penalty,
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert!(penalties.len() > 10);
}

#[tokio::test(start_paused = true)]
async fn a_lost_probe_is_replaced_after_the_probe_timeout() {
    let b = ConsecutiveFailures::new(BreakerParams { jitter: 0.0, probe_timeout: secs(10), ..Default::default() });
    fail_n(&b, 7);
    advance(secs(1)).await;
    assert!(b.admits());
    advance(ms(9999)).await;
    assert!(!b.admits());
    advance(ms(1)).await;
    assert!(b.admits(), "the first probe never reported: offer the slot again");
    assert!(!b.admits());
    assert_eq!(b.record(false), Some(Transition::Opened { penalty: secs(2) }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_callers_get_exactly_one_probe() {
    for _ in 0..20 {
        let b = Arc::new(ConsecutiveFailures::new(BreakerParams {
            max_failures: 1,
            min_penalty: ms(20),
            max_penalty: ms(20),
            jitter: 0.0,
            ..Default::default()
        }));
        assert!(b.admits());
        b.record(false);
        tokio::time::sleep(ms(25)).await;
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (b, barrier) = (b.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    (0..100).filter(|_| b.admits()).count()
                })
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(admitted, 1);
    }
}

#[test]
fn validation() {
    let ok = BreakerParams::default();
    assert!(BreakerParams { max_failures: 0, ..ok }.validate().is_err());
    assert!(BreakerParams { max_penalty: Duration::ZERO, min_penalty: Duration::ZERO, ..ok }.validate().is_err());
    assert!(BreakerParams { min_penalty: secs(61), ..ok }.validate().is_err());
    assert!(BreakerParams { jitter: -0.1, ..ok }.validate().is_err());
    assert!(BreakerParams { jitter: 100.1, ..ok }.validate().is_err());
    assert!(BreakerParams { jitter: f64::NAN, ..ok }.validate().is_err());
    assert!(BreakerParams { jitter: 100.0, ..ok }.validate().is_ok());
    assert_eq!(ok.base_penalty(0), secs(1));
    assert_eq!(ok.base_penalty(3), secs(8));
    assert_eq!(ok.base_penalty(6), secs(60));
    assert_eq!(ok.base_penalty(u32::MAX), secs(60));
}

#[test]
fn state_serializes_for_the_admin_view() {
    let json = |s: BreakerState| serde_json::to_string(&s).unwrap();
    assert_eq!(json(BreakerState::Closed), r#"{"state":"closed"}"#);
    assert_eq!(json(BreakerState::Open { remaining_ms: 850 }), r#"{"state":"open","remaining_ms":850}"#);
    assert_eq!(json(BreakerState::Probation), r#"{"state":"probation"}"#);
    assert_eq!(BreakerState::Open { remaining_ms: 1 }.as_str(), "open");
    assert_eq!(Transition::Opened { penalty: secs(1) }.as_str(), "open");
    assert_eq!(Transition::Probation.as_str(), "probation");
    assert_eq!(Transition::Closed.as_str(), "closed");
}
