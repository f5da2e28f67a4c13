//! Integration tests of the proxy: real backends and the real proxy on 127.0.0.1:0, one binary.

mod balance;
mod mesh;
mod metrics;
mod support;
mod transparency;
