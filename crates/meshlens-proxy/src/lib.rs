//! The meshlens data plane: the sidecar proxy every request crosses (DESIGN.md §2).

pub mod metrics;
