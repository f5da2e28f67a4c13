//! Whole-binary tests: `meshlens` processes started the way a user starts them.

mod demo;
mod demo_app;
mod proxy;
mod stats;
mod support;
mod up;
