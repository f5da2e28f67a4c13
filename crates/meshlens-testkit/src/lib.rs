//! Test helpers for meshlens (dev-dependency only): backends on 127.0.0.1:0, polling asserts, process guards.
//!
//! Everything here binds `127.0.0.1:0` and stops when its handle is dropped: servers abort their tasks,
//! child processes are killed. Nothing sleeps to wait for a condition; use [`assert_eventually!`] or
//! [`eventually()`] to poll with a deadline instead.
//!
//! | module | what |
//! |---|---|
//! | [`eventually`] | `assert_eventually!`, `eventually()`, the patience deadline |
//! | [`blocking`] | `http_get`: a blocking HTTP/1.1 GET for whole-binary tests |
//! | [`backend`] | `HttpBackend` (HTTP/1.1 + h2c) and ready-made handlers (`echo`, `fixed`, …) |
//! | [`faults`] | `failing_fast`, `failing_in_trailers`, `Stall` (stop answering, resume); `ConnFaults` for GOAWAY, closes, refused streams |
//! | [`latency`] | a handler with a known latency distribution and failure share; exact quantiles |
//! | [`grpc`] | a real gRPC `test.Echo` server and client (tonic + prost, no codegen) |
//! | [`tcp`] | `TcpEchoBackend`, `TcpSinkBackend`, `RawTcpBackend` |
//! | [`raw`] | `raw_http1`: send arbitrary bytes, read one HTTP/1 response, see if the peer closed |
//! | [`process`] | `ChildGuard`, `spawn_and_read_json_line` |
//! | [`prom`] | Prometheus text parsing and lookups |
//! | [`fixtures`] | `registration`: a proxy's registration with the control plane |
//! | [`golden`] | `assert_golden`: output against a file in the repository; `UPDATE_GOLDEN=1` rewrites it |
//! | [`tempdir`] | `TempDir`, removed on drop |

pub mod backend;
pub mod blocking;
pub mod eventually;
pub mod faults;
pub mod fixtures;
pub mod golden;
pub mod grpc;
pub mod latency;
pub mod process;
pub mod prom;
pub mod raw;
pub mod tcp;
pub mod tempdir;

pub use backend::{BoxBody, ConnFaults, HttpBackend, SeenRequest};
pub use blocking::{HttpReply, http_get, http_get_as};
pub use eventually::{eventually, eventually_blocking, patience};
pub use fixtures::registration;
pub use golden::assert_golden;
pub use grpc::{GrpcBackend, GrpcClient};
pub use process::{ChildGuard, spawn_and_read_json_line, spawn_and_read_json_line_async};
pub use prom::{Sample, find, parse_prometheus};
pub use raw::{RawResponse, raw_http1};
pub use tcp::{RawTcpBackend, TcpEchoBackend, TcpSinkBackend};
pub use tempdir::{TempDir, write_atomic};

/// The error type of bodies and handlers in this crate.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
