//! Traffic policy, pure logic (issue 5): ServiceProfile routes compiled for matching ([`route`]), response
//! classification ([`classify`]), an HTTPRoute rule's filters ([`filters`]), the per-profile policy with its routes, retry budget and overrides
//! ([`profile`]), Linkerd's retry budget ([`budget`]), the per-endpoint circuit breaker ([`breaker`]) and
//! weighted backend picking for traffic splits ([`split`]).
//!
//! Nothing here does I/O or spawns tasks; time comes from [`tokio::time::Instant`], so tests run on tokio's
//! paused clock. The request path uses these types; it decides when to call them.

pub mod breaker;
pub mod budget;
pub mod classify;
pub mod filters;
pub mod profile;
pub mod route;
pub mod split;

pub use breaker::{BreakerParams, BreakerState, ConsecutiveFailures, Transition, TransitionCounts};
pub use budget::RetryBudget;
pub use classify::{Class, ResponseClassifier};
pub use profile::{Policy, RouteConfig};
pub use route::RequestMatcher;
pub use split::{WeightedPicker, split_backends};
