//! Integration tests of the proxy: real backends and the real proxy on 127.0.0.1:0, one binary.

mod accounting;
mod bad_input;
mod balance;
mod control;
mod faults;
mod grpc;
mod mesh;
mod metrics;
mod policy;
mod routes;
mod smuggling;
mod support;
mod tap;
mod tcp;
mod telemetry;
mod transparency;
