//! `proxy_build_info` and the `process_*` families (read from `/proc/self` at scrape time only).

use std::sync::Arc;

use meshlens_api::labels;
use meshlens_api::process;

use super::LabelSet;
use super::encode::{write_header, write_sample};
use super::registry::{Collect, Registry};

/// Registers `proxy_build_info` (Linkerd's labels `date`, `git_sha`, `profile`, `vendor`, `version`; the
/// build may set `MESHLENS_BUILD_DATE` and `MESHLENS_GIT_SHA`) and the `process_*` families.
///
/// # Panics
/// When one of the names is already registered.
pub fn register_process(reg: &Registry) {
    let build = LabelSet::new()
        .with("date", option_env!("MESHLENS_BUILD_DATE").unwrap_or(""))
        .with("git_sha", option_env!("MESHLENS_GIT_SHA").unwrap_or(""))
        .with("profile", if cfg!(debug_assertions) { "debug" } else { "release" })
        .with("vendor", "meshlens")
        .with("version", env!("CARGO_PKG_VERSION"));
    let mut names = vec![labels::PROXY_BUILD_INFO];
    names.extend(process::FAMILIES);
    reg.register(&names, Arc::new(ProcessCollector { build }));
}

struct ProcessCollector {
    /// The rendered `proxy_build_info` labels.
    build: LabelSet,
}

impl Collect for ProcessCollector {
    fn encode(&self, out: &mut String) {
        write_header(out, labels::PROXY_BUILD_INFO, "Proxy build info.", "gauge");
        write_sample(out, labels::PROXY_BUILD_INFO, "", &[self.build.as_str()], 1);
        process::encode_current(out);
    }
}
