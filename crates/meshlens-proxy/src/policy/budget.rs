//! The retry budget of one ServiceProfile, with Linkerd's exact rule: tower's `TpsBudget` (tower 0.5
//! `retry/budget/tps_budget.rs`, the `Budget` Linkerd's proxy builds from the profile's `retryBudget`).
//!
//! The math: a ratio `r` turns into integer amounts — `r == 0`: deposits add 0, a retry costs 1;
//! `0 < r ≤ 1`: deposits add 1, a retry costs `trunc(1 / r)`; `r > 1`: deposits add 1000, a retry costs
//! `trunc(1000 / r)` — computed in `f32`, as Linkerd's proxy API carries the ratio. (So 0.2 ⇒ 1 retry per 5
//! deposits, and 0.3 ⇒ 1 per 3, the truncation being Linkerd's.) A fixed reserve of
//! `min_per_sec × whole seconds of ttl × retry cost` is always counted; deposits and withdrawals land in the
//! current window and are forgotten once they are about `ttl` old (10 rolling windows of `ttl / 10`; as in
//! tower, a window's amounts count until that window is reused and overwritten, i.e. for up to
//! `ttl + ttl / 10`). A retry is allowed while reserve + the remembered deposits − the remembered withdrawals
//! ≥ its cost; so over any ttl, retries ≤ `min_per_sec × ttl + r × deposits`, and a service failing every
//! request with no deposits gets its reserve once per `ttl + ttl / 10`.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

const WINDOWS: usize = 10;

/// A retry budget shared by all the retryable routes of one ServiceProfile (one per client proxy).
///
/// **The caller's rule** (Linkerd's, `outbound/src/http/retry.rs`): every response that is *not* retryable
/// calls [`deposit`](Self::deposit) — a success, a failure of a non-retryable route or response class, a
/// request whose body was too large to replay, an error with no response; a retryable failure calls
/// [`withdraw`](Self::withdraw) and retries only when it returns `true` — and one that the budget refuses
/// deposits nothing (it is returned to the client as it is, `skipped="no_budget"`).
///
/// Thread-safe: every method takes `&self`; a single mutex guards the windows.
pub struct RetryBudget {
    ratio: f64,
    min_per_sec: u32,
    ttl: Duration,
    deposit_amount: isize,
    withdraw_amount: isize,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Always available; withdrawals against it are remembered like any other, so it comes back after ttl.
    reserve: isize,
    /// Committed windows, each holding the net amount of the window that ended there.
    slots: [isize; WINDOWS],
    /// The net amount of the current window, committed into `slots[index]` when it ends.
    writer: isize,
    index: usize,
    /// When the current window started.
    since: Instant,
    window: Duration,
}

impl RetryBudget {
    /// A budget allowing `ratio` retries per deposit (0..=1000) on top of `min_per_sec` retries per second,
    /// deposits counting for `ttl` (1 s..=60 s).
    ///
    /// # Panics
    /// When a parameter is out of range (as tower's does); use [`RetryBudget::try_new`] for untrusted input.
    pub fn new(ratio: f64, min_per_sec: u32, ttl: Duration) -> RetryBudget {
        RetryBudget::try_new(ratio, min_per_sec, ttl).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`RetryBudget::new`], refusing what Linkerd's proxy refuses (a refused budget means no retries):
    /// a ratio outside 0..=1000 (or NaN), a ttl outside 1 s..=60 s, `min_per_sec` above `i32::MAX`.
    pub fn try_new(ratio: f64, min_per_sec: u32, ttl: Duration) -> Result<RetryBudget, String> {
        if !(0.0..=1000.0).contains(&ratio) {
            return Err(format!("retryRatio {ratio} is not in 0..=1000"));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&ttl) {
            return Err(format!("ttl {ttl:?} is not in 1s..=60s"));
        }
        if min_per_sec > i32::MAX as u32 {
            return Err(format!("minRetriesPerSecond {min_per_sec} is above {}", i32::MAX));
        }
        let r = ratio as f32;
        let (deposit_amount, withdraw_amount) = if r == 0.0 {
            (0, 1)
        } else if r <= 1.0 {
            (1, (1.0 / r) as isize)
        } else {
            (1000, (1000.0 / r) as isize)
        };
        let reserve = (min_per_sec as isize).saturating_mul(ttl.as_secs() as isize).saturating_mul(withdraw_amount);
        Ok(RetryBudget {
            ratio,
            min_per_sec,
            ttl,
            deposit_amount,
            withdraw_amount,
            bucket: Mutex::new(Bucket {
                reserve,
                slots: [0; WINDOWS],
                writer: 0,
                index: 0,
                since: Instant::now(),
                window: ttl / WINDOWS as u32,
            }),
        })
    }

    /// Records a response that was not retried (see the type's documentation for which).
    pub fn deposit(&self) {
        let mut bucket = self.lock();
        bucket.expire(Instant::now());
        bucket.writer = bucket.writer.saturating_add(self.deposit_amount);
    }

    /// Takes one retry from the budget; `false` when the budget is spent (nothing is taken then).
    pub fn withdraw(&self) -> bool {
        let mut bucket = self.lock();
        bucket.expire(Instant::now());
        if bucket.balance() >= self.withdraw_amount {
            bucket.writer = bucket.writer.saturating_sub(self.withdraw_amount);
            true
        } else {
            false
        }
    }

    /// How many retries [`withdraw`](Self::withdraw) would grant right now, for the admin view.
    pub fn available(&self) -> u64 {
        let mut bucket = self.lock();
        bucket.expire(Instant::now());
        u64::try_from(bucket.balance() / self.withdraw_amount).unwrap_or(0)
    }

    /// The configured retry ratio.
    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// The configured minimum retries per second.
    pub fn min_per_sec(&self) -> u32 {
        self.min_per_sec
    }

    /// How long a deposit counts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.bucket.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for RetryBudget {
    /// Linkerd's default budget: ratio 0.2, 10 retries per second, ttl 10 s.
    fn default() -> RetryBudget {
        RetryBudget::new(0.2, 10, Duration::from_secs(10))
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("ratio", &self.ratio)
            .field("min_per_sec", &self.min_per_sec)
            .field("ttl", &self.ttl)
            .field("deposit", &self.deposit_amount)
            .field("withdraw", &self.withdraw_amount)
            .field("balance", &self.lock().balance())
            .finish()
    }
}

impl Bucket {
    /// Rolls the windows forward to `now`: the current window's amount is committed to its slot, and every
    /// slot the clock moved into is cleared (it held amounts from one ttl ago).
    ///
    /// Unlike tower's `TpsBudget::expire` (which moves one slot too far each time the clock passes a window
    /// boundary, so amounts expire after about half the ttl and the budget allows about twice the retries),
    /// an amount here counts for the whole ttl, as Linkerd documents the budget.
    fn expire(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed < self.window {
            return;
        }
        let windows = (elapsed.as_nanos() / self.window.as_nanos().max(1)) as usize;
        self.slots[self.index] = std::mem::take(&mut self.writer);
        for i in 1..=windows.min(WINDOWS) {
            self.slots[(self.index + i) % WINDOWS] = 0;
        }
        self.index = (self.index + windows) % WINDOWS;
        self.since += self.window * windows as u32;
    }

    fn balance(&self) -> isize {
        self.slots.iter().fold(self.writer, |sum, &slot| sum.saturating_add(slot)).saturating_add(self.reserve)
    }
}

#[cfg(test)]
#[path = "tests/budget.rs"]
mod tests;
