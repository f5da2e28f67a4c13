//! Graceful shutdown: one drain signal for every listener and connection, and a wait for them to finish.
//!
//! Every task that must finish before the proxy exits holds a [`Drain`]; the [`DrainController`] signals
//! them all and waits until the last one is dropped, or the grace period ends.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

/// Held by listeners and connections: tells them to stop and keeps the proxy alive while they finish.
#[derive(Clone)]
pub struct Drain {
    signal: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
}

impl Drain {
    /// Resolves once shutdown has begun.
    pub async fn signaled(&self) {
        let mut rx = self.signal.clone();
        let _ = rx.wait_for(|draining| *draining).await;
    }
}

pub struct DrainController {
    signal: watch::Sender<bool>,
    done: mpsc::Receiver<()>,
}

impl DrainController {
    pub fn new() -> (DrainController, Drain) {
        let (signal, rx) = watch::channel(false);
        let (alive, done) = mpsc::channel(1);
        (DrainController { signal, done }, Drain { signal: rx, _alive: alive })
    }

    /// Signals every holder, then waits up to `grace` for all of them to finish. Returns whether they did.
    pub async fn drain(mut self, grace: Duration) -> bool {
        let _ = self.signal.send(true);
        tokio::time::timeout(grace, self.done.recv()).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_for_holders_then_gives_up_after_grace() {
        let (ctl, drain) = DrainController::new();
        let held = drain.clone();
        drop(drain);
        let task = tokio::spawn(async move {
            held.signaled().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            drop(held);
        });
        assert!(ctl.drain(Duration::from_secs(5)).await, "finished within grace");
        task.await.unwrap();

        let (ctl, drain) = DrainController::new();
        let _stuck = drain;
        assert!(!ctl.drain(Duration::from_secs(5)).await, "gave up after grace");
    }
}
