use std::sync::Arc;
use std::time::Duration;

use tokio::time::advance;

use super::RetryBudget;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn withdraw_all(b: &RetryBudget) -> u32 {
    let mut n = 0;
    while b.withdraw() {
        n += 1;
        assert!(n < 1_000_000, "budget never runs out");
    }
    n
}

#[tokio::test(start_paused = true)]
async fn ratio_one_retry_per_five_deposits_beyond_the_reserve() {
    let b = RetryBudget::new(0.2, 0, secs(10));
    assert!(!b.withdraw(), "no reserve, no deposits");
    for _ in 0..4 {
        b.deposit();
    }
    assert!(!b.withdraw(), "4 deposits are not enough for one retry at 0.2");
    b.deposit();
    assert!(b.withdraw());
    assert!(!b.withdraw());
    for _ in 0..100 {
        b.deposit();
    }
    assert_eq!(withdraw_all(&b), 20);
}

#[tokio::test(start_paused = true)]
async fn ratio_math_matches_tower() {
    // 0.3 ⇒ a retry costs trunc(1/0.3) = 3 deposits (tower's truncation).
    let b = RetryBudget::new(0.3, 0, secs(10));
    for _ in 0..9 {
        b.deposit();
    }
    assert_eq!(withdraw_all(&b), 3);
    // 1.0 ⇒ one per deposit; 2.0 ⇒ two per deposit; 0 ⇒ deposits give nothing.
    let b = RetryBudget::new(1.0, 0, secs(10));
    (0..7).for_each(|_| b.deposit());
    assert_eq!(withdraw_all(&b), 7);
    let b = RetryBudget::new(2.0, 0, secs(10));
    (0..7).for_each(|_| b.deposit());
    assert_eq!(withdraw_all(&b), 14);
    let b = RetryBudget::new(0.0, 0, secs(10));
    (0..1000).for_each(|_| b.deposit());
    assert_eq!(withdraw_all(&b), 0);
    // 1000 ⇒ a thousand per deposit.
    let b = RetryBudget::new(1000.0, 0, secs(10));
    b.deposit();
    assert_eq!(withdraw_all(&b), 1000);
}

#[tokio::test(start_paused = true)]
async fn min_per_second_reserve() {
    // Reserve = 10/s × 10 s = 100 retries with no traffic at all.
    let b = RetryBudget::default();
    assert_eq!(b.available(), 100);
    assert_eq!(withdraw_all(&b), 100);
    assert_eq!(b.available(), 0);
    // Deposits add on top of the reserve at the ratio.
    (0..50).for_each(|_| b.deposit());
    assert_eq!(withdraw_all(&b), 10);
    // The withdrawals age out with the windows: after a full ttl the reserve is whole again.
    advance(secs(5)).await;
    assert!(!b.withdraw(), "withdrawals still remembered half a ttl later");
    advance(secs(6)).await;
    assert_eq!(withdraw_all(&b), 100);
    // ttl counts in whole seconds for the reserve (1.5 s ⇒ 1 s), as tower's `as_secs()`.
    let b = RetryBudget::new(1.0, 3, Duration::from_millis(1500));
    assert_eq!(withdraw_all(&b), 3);
}

#[tokio::test(start_paused = true)]
async fn reserve_spread_over_time_is_min_per_second() {
    // Steady failing traffic with no deposits: the reserve (100) is spent at once, then comes back when those
    // withdrawals age out. tower keeps the window being reused until it is overwritten, so a window's
    // withdrawals count for ttl + one window: 100 per 11 s here, i.e. 600 over 60 s (bursts at 0, 11, ..., 55 s).
    let b = RetryBudget::default();
    let mut granted = 0;
    for _ in 0..600 {
        for _ in 0..10 {
            granted += u32::from(b.withdraw());
        }
        advance(Duration::from_millis(100)).await;
    }
    assert_eq!(granted, 600);
}

#[tokio::test(start_paused = true)]
async fn deposits_expire_after_ttl() {
    // tower's tps_leaky: a deposit 3 ttl ago counts for nothing.
    let b = RetryBudget::new(1.0, 0, secs(1));
    b.deposit();
    advance(secs(3)).await;
    assert!(!b.withdraw());

    // tower's tps_slots: deposits count while younger than ttl, in windows of ttl/10.
    let b = RetryBudget::new(0.5, 0, secs(1));
    b.deposit();
    b.deposit();
    advance(Duration::from_millis(901)).await;
    assert!(b.withdraw(), "900 ms later the deposits still count");
    advance(Duration::from_millis(2001)).await;
    b.deposit();
    advance(Duration::from_millis(301)).await;
    b.deposit();
    advance(Duration::from_millis(801)).await;
    b.deposit();
    assert!(b.withdraw(), "the first deposit expired, the 2nd and 3rd are enough");
    assert!(!b.withdraw());
}

#[tokio::test(start_paused = true)]
async fn deposits_count_for_ttl_then_go() {
    let b = RetryBudget::new(1.0, 0, secs(10));
    (0..10).for_each(|_| b.deposit());
    advance(secs(9)).await;
    assert_eq!(b.available(), 10);
    advance(secs(3)).await;
    assert_eq!(b.available(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_refused_withdraw_takes_nothing() {
    let b = RetryBudget::new(0.2, 0, secs(10));
    (0..4).for_each(|_| b.deposit());
    for _ in 0..10 {
        assert!(!b.withdraw());
    }
    // Refusals left the 4 deposits intact: one more deposit completes a retry.
    b.deposit();
    assert!(b.withdraw());
}

#[test]
fn invalid_parameters_are_refused_like_linkerd() {
    assert!(RetryBudget::try_new(-0.1, 10, secs(10)).unwrap_err().contains("retryRatio"));
    assert!(RetryBudget::try_new(1000.1, 10, secs(10)).is_err());
    assert!(RetryBudget::try_new(f64::NAN, 10, secs(10)).is_err());
    assert!(RetryBudget::try_new(0.2, 10, Duration::from_millis(999)).unwrap_err().contains("ttl"));
    assert!(RetryBudget::try_new(0.2, 10, Duration::from_millis(60_001)).is_err());
    assert!(RetryBudget::try_new(0.2, u32::MAX, secs(10)).unwrap_err().contains("minRetriesPerSecond"));
    for (ratio, ttl) in [(0.0, 1), (1000.0, 60)] {
        let b = RetryBudget::try_new(ratio, 0, secs(ttl)).unwrap();
        assert_eq!((b.ratio(), b.min_per_sec(), b.ttl()), (ratio, 0, secs(ttl)));
    }
}

#[test]
#[should_panic(expected = "retryRatio")]
fn new_panics_on_invalid() {
    RetryBudget::new(-1.0, 0, secs(10));
}

#[test]
fn usable_outside_a_runtime_and_across_threads() {
    let b = Arc::new(RetryBudget::new(1.0, 0, secs(10)));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || (0..1000).for_each(|_| b.deposit()))
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(withdraw_all(&b), 4000);
    assert!(format!("{b:?}").contains("balance: 0"));
}

#[tokio::test(start_paused = true)]
async fn without_deposits_retries_are_the_reserve_then_min_per_second() {
    // A backend failing everything: no response deposits. 50 retry attempts per second for 30 s may take
    // the reserve (10/s × 10 s) at once, then 10 per second as withdrawals expire after the ttl.
    let budget = RetryBudget::new(0.2, 10, Duration::from_secs(10));
    let mut allowed = 0;
    for _ in 0..1500 {
        if budget.withdraw() {
            allowed += 1;
        }
        tokio::time::advance(Duration::from_millis(20)).await;
    }
    assert!((290..=320).contains(&allowed), "{allowed} retries in 30 s");
}
