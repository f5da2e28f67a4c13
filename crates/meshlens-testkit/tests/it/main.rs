//! Self-tests of meshlens-testkit: its servers and clients talking to each other on loopback.

mod grpc;
mod http;
mod tcp;
