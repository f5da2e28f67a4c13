//! The state every listener of one proxy shares: [`Shared`] (configuration, discovery, metric families,
//! observers, settings) and the targets built from it. Targets see only [`Shared`], so the two modules do
//! not depend on each other.

use std::ops::Deref;
use std::sync::Arc;

use crate::config::Config;
use crate::discovery::Discovery;
use crate::metrics::Registry;
use crate::shared::Shared;
use crate::targets::Targets;

pub struct Ctx {
    shared: Shared,
    pub targets: Targets,
}

impl Ctx {
    pub fn new(config: Arc<Config>, discovery: Arc<Discovery>, registry: Registry) -> Ctx {
        Ctx { shared: Shared::new(config, discovery, registry), targets: Targets::default() }
    }
}

/// `ctx.config`, `ctx.discovery`, …: the shared state, wherever a `&Ctx` is at hand (and `&Ctx` passes
/// where the targets want `&Shared`).
impl Deref for Ctx {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
}
