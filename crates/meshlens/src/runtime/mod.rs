//! The local runtime behind `meshlens up` and `meshlens demo`: a supervisor that runs a mesh directory on
//! one machine — the control plane, and for every workload instance its app and its sidecar proxy, wired
//! together on loopback with fixed ports.
//!
//! | module | what |
//! |---|---|
//! | [`mesh`] | reading `mesh.yaml` (what the supervisor needs; the control plane validates the rest) |
//! | [`ports`] | choosing free loopback ports once, so restarted processes keep their addresses |
//! | [`plan`] | the processes to run: argv, env, ports — pure, unit-tested |
//! | [`supervisor`] | spawning in process groups, prefixed output, restarts with backoff, graceful stop |
//! | [`output`] | prefixed (and, on a terminal, coloured) output lines, or one log file per process |
//! | [`reaper`] | a watchdog process that stops the mesh's process groups if `up` itself is killed |
//! | [`reconcile`] | following `mesh.yaml` while running: instances started/stopped as workloads change |
//! | [`secrets`] | the 0700 directory of the proxy key, the API token and each proxy's credential |
//! | [`session`] | the session file the CLI uses to find the control plane (and its API token) |
//! | [`up`] | the whole `up` sequence: plan → control plane → proxies → apps → table → wait → stop |

pub mod mesh;
pub mod output;
pub mod plan;
pub mod ports;
pub mod reaper;
pub mod reconcile;
pub mod secrets;
pub mod session;
pub mod supervisor;
pub mod up;
