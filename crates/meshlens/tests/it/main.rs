//! Whole-binary tests: `meshlens` processes started the way a user starts them.

mod accuracy;
mod alerts;
mod check;
mod credentials;
mod dashboard;
mod demo;
mod demo_app;
mod diagnose;
mod diagnostics;
mod evidence;
mod grafana;
mod logs;
mod mesh_e2e;
mod profile;
mod proxy;
mod stat_habits;
mod stats;
mod support;
mod tap;
mod tap_demo;
mod up;
