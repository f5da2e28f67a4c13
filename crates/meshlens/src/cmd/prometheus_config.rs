//! `meshlens prometheus-config`: a prometheus.yml whose job scrapes every proxy of the mesh, found through
//! the control plane's HTTP service discovery (`/api/v1/prometheus/targets`), so Prometheus follows proxies
//! as they come and go and labels their series with `namespace`, `deployment` and `pod`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::client::ControlArg;

/// Print a Prometheus configuration (prometheus.yml) that scrapes every proxy registered with the control
/// plane; run the control plane with `--prometheus-url` to answer `stat`, `routes` and `edges` from it.
#[derive(Args, Debug)]
pub struct PrometheusConfigArgs {
    /// How often Prometheus scrapes each proxy (give the control plane the same --scrape-interval).
    #[arg(long, default_value = "5s", value_parser = interval)]
    scrape_interval: Duration,
    /// How often Prometheus asks the control plane which proxies there are.
    #[arg(long, default_value = "5s", value_parser = interval)]
    refresh_interval: Duration,
    /// The job's name: the `job` label of every proxy series (`linkerd-proxy` is the one Linkerd's dashboards
    /// and alerts select).
    #[arg(long, default_value = "meshlens-proxies")]
    job_name: String,
    #[command(flatten)]
    control: ControlArg,
}

pub fn run(args: PrometheusConfigArgs) -> anyhow::Result<ExitCode> {
    let control = args.control.url();
    let token_file = args.control.api_token_file.as_deref().map(std::path::absolute).transpose()?;
    print!("{}", render(&control, &args.job_name, args.scrape_interval, args.refresh_interval, token_file.as_deref()));
    Ok(ExitCode::SUCCESS)
}

/// The configuration text; service discovery sends the API token from `token_file` (the control plane's
/// /api/v1/ needs it).
fn render(
    control: &str,
    job: &str,
    scrape: Duration,
    refresh: Duration,
    token_file: Option<&std::path::Path>,
) -> String {
    let ms = |d: Duration| match d.as_millis() {
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    };
    let timeout = ms(scrape.min(Duration::from_secs(10)));
    let (scrape, refresh) = (ms(scrape), ms(refresh));
    let job = yaml_string(job);
    let targets = yaml_string(&format!("{control}/api/v1/prometheus/targets"));
    let auth = match token_file {
        Some(file) => format!(
            "        authorization:\n          type: Bearer\n          credentials_file: {}\n",
            yaml_string(&file.display().to_string())
        ),
        None => "        # the control plane's API needs its token: run with --api-token-file FILE\n".into(),
    };
    format!(
        "# Prometheus configuration for the meshlens proxies registered with {control}.\n\
         # Each proxy's admin /metrics is scraped, labelled namespace/deployment/pod, the labels\n\
         # `meshlens control --prometheus-url` groups by. To add the job to an existing prometheus.yml, copy\n\
         # the entry under scrape_configs.\n\
         global:\n  \
           scrape_interval: {scrape}\n\
         scrape_configs:\n  \
           - job_name: {job}\n    \
             scrape_interval: {scrape}\n    \
             scrape_timeout: {timeout}\n    \
             metrics_path: /metrics\n    \
             http_sd_configs:\n      \
               - url: {targets}\n        \
                 refresh_interval: {refresh}\n{auth}"
    )
}

/// A YAML double-quoted string.
fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn interval(s: &str) -> Result<Duration, String> {
    let d = meshlens_api::duration::parse(s)?;
    if d < Duration::from_millis(1) {
        return Err("must be at least 1ms".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_job_following_the_control_plane() {
        let token = std::path::Path::new("/run/api.token");
        let text = render(
            "http://127.0.0.1:8086",
            "meshlens-proxies",
            Duration::from_secs(5),
            Duration::from_secs(1),
            Some(token),
        );
        let expected = "global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: \"meshlens-proxies\"\n    \
            scrape_interval: 5s\n    scrape_timeout: 5s\n    metrics_path: /metrics\n    http_sd_configs:\n      \
            - url: \"http://127.0.0.1:8086/api/v1/prometheus/targets\"\n        refresh_interval: 1s\n        \
            authorization:\n          type: Bearer\n          credentials_file: \"/run/api.token\"\n";
        assert!(text.ends_with(expected), "{text}");
        assert!(text.lines().take_while(|l| l.starts_with('#')).count() >= 3);
        let long = render("http://x", "j", Duration::from_secs(30), Duration::from_secs(5), None);
        assert!(long.contains("scrape_interval: 30s\n    scrape_timeout: 10s\n"), "{long}");
        assert!(
            render("http://x", "j", Duration::from_millis(250), Duration::from_secs(5), None)
                .contains("interval: 250ms")
        );
    }
}
