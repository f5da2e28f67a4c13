//! Tap fan-out (`GET /api/v1/tap`): the resource's registered proxies are tapped with the control plane's
//! token, and their events merged into one NDJSON stream with ids made unique per proxy.
//!
//! | module | what |
//! |---|---|
//! | `query` | the query: which proxies (resource), the filter each gets (`to` → destination keys), the rate |
//! | `fanout` | one stream per proxy, merged; reopened while the proxy stays registered; ids and labels |
//! | `upstream` | one proxy's `GET /tap` over HTTP/1, read line by line |

mod fanout;
mod query;
mod upstream;

pub(crate) use fanout::start;
pub(crate) use query::{TapError, parse};
