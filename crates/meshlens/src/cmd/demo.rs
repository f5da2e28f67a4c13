//! `meshlens demo`: the demo shop as a mesh directory, run with `up`, with one
//! of the incident scenarios switched on. The files are embedded from `crates/meshlens/demo/`; a
//! scenario replaces or adds files of the healthy shop (`demo/scenarios/<name>/`), so every scenario is
//! plain configuration that `--export DIR` writes out for `meshlens up -f DIR`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use super::up::RunArgs;
use crate::runtime::plan::Plan;

/// An incident scenario of the demo shop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// order-service fails ~15% with 503; payment→order is retryable with a generous budget.
    RetryStorm,
    /// user-service takes ~7 s on ~5% of GET /users/{id}; its route timeout is 5 s.
    #[value(name = "timeout-504")]
    Timeout504,
    /// The ml-inference split forgets backend -c; -b fails every 50th request.
    StaleSplit,
    /// auth-service sends malformed responses (a bare CR in a header value).
    BadHeaders,
    /// checkout-service canary split with weights 60 and 50 (sum 110).
    SplitMath,
    /// order-service routes expect numeric ids; order ids are UUIDs.
    RegexMiss,
    /// payment-service answers declined charges with 200, ~10× slower.
    SlowSuccess,
}

impl Scenario {
    #[cfg(test)]
    pub const ALL: [Scenario; 7] = [
        Scenario::RetryStorm,
        Scenario::Timeout504,
        Scenario::StaleSplit,
        Scenario::BadHeaders,
        Scenario::SplitMath,
        Scenario::RegexMiss,
        Scenario::SlowSuccess,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::RetryStorm => "retry-storm",
            Scenario::Timeout504 => "timeout-504",
            Scenario::StaleSplit => "stale-split",
            Scenario::BadHeaders => "bad-headers",
            Scenario::SplitMath => "split-math",
            Scenario::RegexMiss => "regex-miss",
            Scenario::SlowSuccess => "slow-success",
        }
    }

    /// The fault, and where a user sees it.
    fn story(self) -> (&'static str, &'static str) {
        match self {
            Scenario::RetryStorm => (
                "order-service fails ~15% of requests with 503; payment-service's proxy retries them \
                 (PUT /orders/{id} is isRetryable, retry budget 0.5)",
                "meshlens stat deploy/payment-service -n prod; meshlens routes deploy/payment-service --to svc/order-service -n prod -o wide",
            ),
            Scenario::Timeout504 => (
                "user-service answers ~5% of GET /users/{id} in ~7 s; its ServiceProfile route has timeout: 5s",
                "meshlens tap deploy/api-gateway -n prod --to deploy/user-service (504s made by the proxy)",
            ),
            Scenario::StaleSplit => (
                "the ml-inference TrafficSplit lists only ml-inference-a and -b; -b fails every 50th request with 503",
                "meshlens stat deploy -n prod (ml-inference-c: 0 RPS); meshlens tap deploy/ml-inference-b -n prod",
            ),
            Scenario::BadHeaders => (
                "auth-service sends 20% of its responses with a bare CR in a header value",
                "meshlens stat deploy/auth-service -n prod; the auth-service-0/proxy log lines (invalid_response)",
            ),
            Scenario::SplitMath => (
                "checkout-service is split 60/50 between checkout-service and checkout-service-canary (sum 110)",
                "meshlens stat ts -n prod (weights 60 and 50 sum to 110: actual shares 54.5% / 45.5%)",
            ),
            Scenario::RegexMiss => (
                "order-service's routes match /orders/[0-9]+ but order ids are UUIDs",
                "meshlens routes deploy/payment-service --to svc/order-service -n prod ([DEFAULT] carries the traffic)",
            ),
            Scenario::SlowSuccess => (
                "payment-service answers 20% of charges (declined) with 200, ~10x slower",
                "meshlens routes deploy/checkout-service --to svc/payment-service -n prod (POST /charge p99 up, success 100%)",
            ),
        }
    }
}

/// The healthy shop: (path in the mesh directory, contents). `{{rps}}` in mesh.yaml is the load rate.
const BASE: &[(&str, &str)] = &[
    ("mesh.yaml", include_str!("../../demo/mesh.yaml")),
    ("frontend.profile.yaml", include_str!("../../demo/frontend.profile.yaml")),
    ("api-gateway.profile.yaml", include_str!("../../demo/api-gateway.profile.yaml")),
    ("user-service.profile.yaml", include_str!("../../demo/user-service.profile.yaml")),
    ("auth-service.profile.yaml", include_str!("../../demo/auth-service.profile.yaml")),
    ("checkout-service.profile.yaml", include_str!("../../demo/checkout-service.profile.yaml")),
    ("payment-service.profile.yaml", include_str!("../../demo/payment-service.profile.yaml")),
    ("order-service.profile.yaml", include_str!("../../demo/order-service.profile.yaml")),
    ("recommendation-service.profile.yaml", include_str!("../../demo/recommendation-service.profile.yaml")),
    ("ml-inference.profile.yaml", include_str!("../../demo/ml-inference.profile.yaml")),
    ("ml-inference.split.yaml", include_str!("../../demo/ml-inference.split.yaml")),
    ("apps/frontend.conf", include_str!("../../demo/apps/frontend.conf")),
    ("apps/api-gateway.conf", include_str!("../../demo/apps/api-gateway.conf")),
    ("apps/user-service.conf", include_str!("../../demo/apps/user-service.conf")),
    ("apps/auth-service.conf", include_str!("../../demo/apps/auth-service.conf")),
    ("apps/checkout-service.conf", include_str!("../../demo/apps/checkout-service.conf")),
    ("apps/payment-service.conf", include_str!("../../demo/apps/payment-service.conf")),
    ("apps/order-service.conf", include_str!("../../demo/apps/order-service.conf")),
    ("apps/recommendation-service.conf", include_str!("../../demo/apps/recommendation-service.conf")),
    ("apps/ml-inference-a.conf", include_str!("../../demo/apps/ml-inference-a.conf")),
    ("apps/ml-inference-b.conf", include_str!("../../demo/apps/ml-inference-b.conf")),
    ("apps/ml-inference-c.conf", include_str!("../../demo/apps/ml-inference-c.conf")),
];

/// Files a scenario replaces or adds.
fn overlay(s: Scenario) -> &'static [(&'static str, &'static str)] {
    match s {
        Scenario::RetryStorm => &[
            ("apps/order-service.conf", include_str!("../../demo/scenarios/retry-storm/apps/order-service.conf")),
            ("order-service.profile.yaml", include_str!("../../demo/scenarios/retry-storm/order-service.profile.yaml")),
        ],
        Scenario::Timeout504 => &[
            ("apps/user-service.conf", include_str!("../../demo/scenarios/timeout-504/apps/user-service.conf")),
            ("user-service.profile.yaml", include_str!("../../demo/scenarios/timeout-504/user-service.profile.yaml")),
        ],
        Scenario::StaleSplit => &[
            ("ml-inference.split.yaml", include_str!("../../demo/scenarios/stale-split/ml-inference.split.yaml")),
            ("apps/ml-inference-b.conf", include_str!("../../demo/scenarios/stale-split/apps/ml-inference-b.conf")),
        ],
        Scenario::BadHeaders => {
            &[("apps/auth-service.conf", include_str!("../../demo/scenarios/bad-headers/apps/auth-service.conf"))]
        }
        Scenario::SplitMath => &[(
            "checkout-service.split.yaml",
            include_str!("../../demo/scenarios/split-math/checkout-service.split.yaml"),
        )],
        Scenario::RegexMiss => &[(
            "order-service.profile.yaml",
            include_str!("../../demo/scenarios/regex-miss/order-service.profile.yaml"),
        )],
        Scenario::SlowSuccess => &[(
            "apps/payment-service.conf",
            include_str!("../../demo/scenarios/slow-success/apps/payment-service.conf"),
        )],
    }
}

/// split-math's canary: one more workload and service, running checkout-service's config.
const CANARY_WORKLOAD: &str = "    - name: checkout-service-canary
      namespace: prod
      command: [meshlens, demo-app, --config, apps/checkout-service.conf]
      calls: [payment-service]
";
const CANARY_SERVICE: &str =
    "    - {name: checkout-service-canary, namespace: prod, workload: checkout-service-canary, port: 80}\n";

/// Every file of the demo's mesh directory for a scenario (None: the healthy shop).
pub fn files(scenario: Option<Scenario>, rps: f64) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = BASE.iter().map(|(p, c)| ((*p).to_owned(), (*c).to_owned())).collect();
    if let Some(s) = scenario {
        for (path, text) in overlay(s) {
            match files.iter_mut().find(|(p, _)| p == path) {
                Some(f) => f.1 = (*text).to_owned(),
                None => files.push(((*path).to_owned(), (*text).to_owned())),
            }
        }
    }
    for (path, text) in &mut files {
        if path == "mesh.yaml" {
            *text = text.replace("{{rps}}", &format_rps(rps));
            if scenario == Some(Scenario::SplitMath) {
                *text = text.replacen("  services:\n", &format!("{CANARY_WORKLOAD}  services:\n"), 1);
                text.push_str(CANARY_SERVICE);
            }
        }
    }
    files.push(("README.md".into(), readme(scenario)));
    files
}

fn format_rps(rps: f64) -> String {
    if rps.fract() == 0.0 { format!("{rps:.0}") } else { rps.to_string() }
}

fn readme(scenario: Option<Scenario>) -> String {
    let mut s = String::from(
        "# meshlens demo shop\n\nRun it with `meshlens up -f .` (or `meshlens demo` for the built-in copy).\n\n\
         - `mesh.yaml`: workloads (each runs `meshlens demo-app --config apps/NAME.yaml`; `traffic` runs\n  \
         `meshlens demo-load`) and services, namespace `prod`.\n\
         - `*.profile.yaml`, `*.split.yaml`: ServiceProfiles and TrafficSplits (the control plane loads every\n  \
         `*.yaml` here).\n\
         - `apps/*.conf`: the demo apps' configurations (YAML: routes, latencies, calls, faults). They are\n  \
         not named `*.yaml` because the control plane reads every `*.yaml` file here as a mesh resource.\n\n",
    );
    match scenario {
        None => s.push_str("Scenario: none (the healthy shop).\n"),
        Some(sc) => {
            let (fault, see) = sc.story();
            s.push_str(&format!("Scenario: `{}`: {fault}.\n\nLook at it with: {see}\n", sc.name()));
        }
    }
    s
}

/// Writes the mesh directory; refuses a directory that has files unless `force`.
pub fn write_dir(dir: &Path, files: &[(String, String)], force: bool) -> anyhow::Result<()> {
    if dir.exists() && !force && std::fs::read_dir(dir)?.next().is_some() {
        bail!("{} is not empty (use --force to overwrite the demo's files in it)", dir.display());
    }
    for (path, text) in files {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&full, text).with_context(|| format!("cannot write {}", full.display()))?;
    }
    Ok(())
}

/// Run the demo shop: a whole mesh on this machine, with a traffic generator and optional faults.
///
/// Starts the control plane, then the shop in namespace prod (frontend → api-gateway → user-service,
/// auth-service; frontend → checkout-service → payment-service → order-service; frontend →
/// recommendation-service → ml-inference split over ml-inference-a/-b/-c), each instance with its sidecar
/// proxy, and `traffic` driving frontend. --scenario switches on one incident; --export writes the mesh
/// directory instead of running it (run it with `meshlens up -f DIR`).
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The incident to inject (default: none, a healthy shop).
    #[arg(long, value_enum)]
    pub scenario: Option<Scenario>,
    /// Requests per second the traffic generator sends to frontend.
    #[arg(long, default_value_t = 20.0)]
    pub rps: f64,
    /// Write the demo's mesh directory to DIR and exit.
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,
    /// With --export: write into a directory that already has files.
    #[arg(long, requires = "export")]
    pub force: bool,
    /// Show every process's output in the terminal (default: only the traffic generator's; the rest
    /// goes to log files in the state directory, see the start-up lines).
    #[arg(long, conflicts_with = "log_dir")]
    pub show_logs: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if !(args.rps.is_finite() && args.rps > 0.0) {
        bail!("--rps must be above 0");
    }
    let files = files(args.scenario, args.rps);
    if let Some(dir) = &args.export {
        write_dir(dir, &files, args.force)?;
        let what = args.scenario.map_or("the healthy demo shop".to_owned(), |s| format!("scenario {}", s.name()));
        println!("wrote {what} to {}\nrun it with: meshlens up -f {}", dir.display(), dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let state = crate::runtime::session::state_dir().unwrap_or_else(std::env::temp_dir);
    let dir = state.join(format!("demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    write_dir(&dir, &files, false)?;
    let _cleanup = RemoveOnDrop(dir.clone());
    let mut opts = args.run.options(dir);
    if opts.log_dir.is_none() && !args.show_logs {
        let logs = state.join("demo-logs");
        let _ = std::fs::remove_dir_all(&logs);
        opts.log_dir = Some(logs);
        opts.echo = vec!["traffic-0".into()];
    }
    let scenario = args.scenario;
    opts.guide = Some(Box::new(move |plan: &Plan| guide(plan, scenario)));
    crate::runtime::up::run(opts)
}

/// How to look at the running demo.
fn guide(plan: &Plan, scenario: Option<Scenario>) -> String {
    let proxy = plan.instances.iter().find(|i| i.workload == "traffic").or(plan.instances.first());
    let mut s = String::from("\nThe demo shop (namespace prod) is starting; traffic drives frontend.\n");
    if let Some(p) = proxy {
        s.push_str(&format!(
            "  try it            curl -x http://{} http://frontend/products/42   (through {}'s proxy; any OUTBOUND works)\n",
            p.outbound, p.name
        ));
    }
    s.push_str(&format!("  control plane     {}   (the CLI finds it by itself)\n", plan.control_url));
    s.push_str("  dashboard         meshlens dashboard   (a login link; opens a browser when there is one)\n");
    s.push_str("  look              meshlens stat deploy -n prod; meshlens edges deploy -n prod; meshlens routes deploy/frontend -n prod\n");
    s.push_str("  what is wrong?    meshlens diagnose -n prod; meshlens logs deploy/frontend -n prod\n");
    s.push_str("  healthy?          meshlens check; meshlens alerts\n");
    match scenario {
        None => s.push_str("  scenario          none: a healthy shop (pick one with --scenario, see --help)\n"),
        Some(sc) => {
            let (fault, see) = sc.story();
            s.push_str(&format!("  scenario          {}: {fault}\n  where to see it   {see}\n", sc.name()));
        }
    }
    s.push_str("  edit and rerun    meshlens demo --export DIR [--scenario NAME]; meshlens up -f DIR\n");
    s
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::demo_app::config;
    use meshlens_api::profile::{ServiceProfile, TrafficSplit};

    fn all() -> Vec<Option<Scenario>> {
        std::iter::once(None).chain(Scenario::ALL.map(Some)).collect()
    }

    #[derive(serde::Deserialize)]
    struct Kind {
        kind: String,
    }

    /// Parses every file of a scenario's directory; returns the profiles and splits.
    fn parse(files: &[(String, String)]) -> (meshlens_api::mesh::Mesh, Vec<ServiceProfile>, Vec<TrafficSplit>) {
        let mesh =
            crate::runtime::mesh::parse(&files.iter().find(|f| f.0 == "mesh.yaml").unwrap().1, "mesh.yaml").unwrap();
        let (mut profiles, mut splits) = (vec![], vec![]);
        for (path, text) in files {
            if path.starts_with("apps/") {
                let cfg = config::parse(text, path).unwrap();
                config::compile(&cfg, &config::Identity::default()).unwrap_or_else(|e| panic!("{path}: {e:?}"));
            } else if path.ends_with(".yaml") && path != "mesh.yaml" {
                let kind: Kind = serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{path}: {e}"));
                match kind.kind.as_str() {
                    "ServiceProfile" => profiles.push(serde_saphyr::from_str(text).unwrap()),
                    "TrafficSplit" => splits.push(serde_saphyr::from_str(text).unwrap()),
                    k => panic!("{path}: unexpected kind {k}"),
                }
            }
        }
        (mesh, profiles, splits)
    }

    #[test]
    fn every_scenario_is_a_valid_mesh_directory() {
        for sc in all() {
            let files = files(sc, 20.0);
            for (path, _) in &files {
                let yaml = path.ends_with(".yaml") || path.ends_with(".yml");
                assert!(!yaml || !path.contains('/'), "{path}: the control plane reads every YAML file as a resource");
            }
            let (mesh, profiles, splits) = parse(&files);
            let services: Vec<&str> = mesh.spec.services.iter().map(|s| s.name.as_str()).collect();
            let workloads: Vec<&str> = mesh.spec.workloads.iter().map(|w| w.name.as_str()).collect();
            for s in &mesh.spec.services {
                assert!(workloads.contains(&s.workload.as_str()), "{sc:?}: {} selects a workload", s.name);
            }
            for w in &mesh.spec.workloads {
                for c in &w.calls {
                    assert!(services.contains(&c.as_str()), "{sc:?}: {} calls unknown {c}", w.name);
                }
                if let Some(meshlens_api::mesh::Command::Argv(argv)) = &w.command
                    && argv[1] == "demo-app"
                {
                    assert!(files.iter().any(|f| f.0 == argv[3]), "{sc:?}: {} has its config", w.name);
                }
            }
            for p in &profiles {
                let svc = p.metadata.name.strip_suffix(".prod.svc.cluster.local").unwrap();
                assert!(services.contains(&svc), "{sc:?}: profile for unknown {svc}");
            }
            for s in &splits {
                for b in &s.spec.backends {
                    assert!(services.contains(&b.service.as_str()), "{sc:?}: split backend {}", b.service);
                }
            }
        }
    }

    #[test]
    fn the_healthy_shop_has_no_faults_and_the_full_split() {
        let files = files(None, 20.0);
        let (mesh, _, splits) = parse(&files);
        for (path, text) in files.iter().filter(|f| f.0.starts_with("apps/")) {
            let app = config::compile(&config::parse(text, path).unwrap(), &config::Identity::default()).unwrap();
            assert!(app.faults.is_empty() && app.routes.iter().all(|r| r.faults.is_empty()), "{path}");
        }
        assert_eq!(splits.len(), 1);
        assert_eq!(splits[0].spec.backends.len(), 3);
        let traffic = mesh.spec.workloads.iter().find(|w| w.name == "traffic").unwrap();
        assert!(matches!(&traffic.command, Some(meshlens_api::mesh::Command::Argv(a)) if a.contains(&"20".to_owned())));
        assert!(super::files(None, 2.5).iter().any(|f| f.0 == "mesh.yaml" && f.1.contains("\"2.5\"")));
    }

    #[test]
    fn scenarios_change_what_scenarios_md_says() {
        let get = |sc, path: &str| files(Some(sc), 20.0).into_iter().find(|f| f.0 == path).unwrap().1;
        let (_, profiles, _) = parse(&files(Some(Scenario::RetryStorm), 20.0));
        let orders = profiles.iter().find(|p| p.metadata.name.starts_with("order-service.")).unwrap();
        assert!(orders.spec.routes.iter().any(|r| r.is_retryable));
        assert!(orders.spec.retry_budget.as_ref().unwrap().retry_ratio >= 0.2);
        assert!(get(Scenario::RetryStorm, "apps/order-service.conf").contains("rate: 0.15, status: 503"));

        assert!(get(Scenario::Timeout504, "user-service.profile.yaml").contains("timeout: 5s"));
        assert!(get(Scenario::Timeout504, "apps/user-service.conf").contains("rate: 0.05"));

        let (_, _, splits) = parse(&files(Some(Scenario::StaleSplit), 20.0));
        let backends: Vec<_> = splits[0].spec.backends.iter().map(|b| b.service.as_str()).collect();
        assert_eq!(backends, ["ml-inference-a", "ml-inference-b"]);
        assert!(get(Scenario::StaleSplit, "apps/ml-inference-b.conf").contains("every: 50, status: 503"));

        assert!(get(Scenario::BadHeaders, "apps/auth-service.conf").contains("invalid: bare-cr"));

        let (mesh, _, splits) = parse(&files(Some(Scenario::SplitMath), 20.0));
        assert!(mesh.spec.workloads.iter().any(|w| w.name == "checkout-service-canary"));
        let checkout = splits.iter().find(|s| s.spec.service == "checkout-service").unwrap();
        let weights: Vec<_> = checkout.spec.backends.iter().map(|b| b.weight.milli_value().unwrap() / 1000).collect();
        assert_eq!(weights, [60, 50]);

        assert!(get(Scenario::RegexMiss, "order-service.profile.yaml").contains("/orders/[0-9]+"));
        assert!(get(Scenario::SlowSuccess, "apps/payment-service.conf").contains("charged\":false"));
        assert!(get(Scenario::SlowSuccess, "README.md").contains("slow-success"));
    }
}
