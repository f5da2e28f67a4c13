//! The `process_*` families of every meshlens process (Prometheus' standard process collector, as Linkerd's
//! proxy exports them), read from `/proc/self` when `/metrics` is scraped: never on a request path.

use std::fmt::Write;

/// Clock ticks per second of `/proc/*/stat` times (Linux's USER_HZ, fixed at 100 for user space; Prometheus'
/// procfs reader assumes the same).
const USER_HZ: f64 = 100.0;

/// One reading of the process' resources.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProcessStats {
    /// Unix time (s) the process started.
    pub start_time_seconds: f64,
    /// User + system CPU time (s).
    pub cpu_seconds_total: f64,
    pub resident_memory_bytes: u64,
    pub virtual_memory_bytes: u64,
    pub open_fds: u64,
    /// The soft limit on open files (absent when unlimited or unreadable).
    pub max_fds: Option<u64>,
}

impl ProcessStats {
    /// Reads `/proc/self`; `None` where there is no procfs (the families are then left out).
    pub fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let open_fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0);
        ProcessStats::parse(&stat, &boot, &limits, open_fds)
    }

    /// Parses the texts of `/proc/self/stat`, `/proc/stat` and `/proc/self/limits`.
    pub fn parse(self_stat: &str, proc_stat: &str, limits: &str, open_fds: u64) -> Option<ProcessStats> {
        // Fields after the command name, which is in parentheses and may contain spaces.
        let rest = &self_stat[self_stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3 (state): field N is fields[N - 3].
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        let (utime, stime, starttime) = (field(14)?, field(15)?, field(22)?);
        let (vsize, rss_pages) = (field(23)?, field(24)?);
        let btime = proc_stat.lines().find_map(|l| l.strip_prefix("btime ")?.trim().parse::<u64>().ok())?;
        let max_fds = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l["Max open files".len()..].split_whitespace().next().and_then(|v| v.parse::<u64>().ok()));
        Some(ProcessStats {
            start_time_seconds: btime as f64 + starttime as f64 / USER_HZ,
            cpu_seconds_total: (utime + stime) as f64 / USER_HZ,
            resident_memory_bytes: rss_pages * PAGE_SIZE,
            virtual_memory_bytes: vsize,
            open_fds,
            max_fds,
        })
    }

    /// Appends the families (HELP, TYPE, one unlabelled sample each) in the text format 0.0.4.
    pub fn encode(&self, out: &mut String) {
        let mut family = |name: &str, kind: &str, help: &str, value: String| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
        };
        family(
            PROCESS_START_TIME_SECONDS,
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            format!("{}", self.start_time_seconds),
        );
        family(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            format!("{}", self.cpu_seconds_total),
        );
        family(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            self.resident_memory_bytes.to_string(),
        );
        family(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            self.virtual_memory_bytes.to_string(),
        );
        family("process_open_fds", "gauge", "Number of open file descriptors.", self.open_fds.to_string());
        if let Some(max) = self.max_fds {
            family("process_max_fds", "gauge", "Maximum number of open file descriptors.", max.to_string());
        }
    }
}

/// The family Linkerd's dashboards list namespaces and pods with (`label_values(process_start_time_seconds, …)`).
pub const PROCESS_START_TIME_SECONDS: &str = "process_start_time_seconds";

/// The names of the families [`ProcessStats::encode`] writes.
pub const FAMILIES: [&str; 6] = [
    PROCESS_START_TIME_SECONDS,
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
];

/// Memory page size of `/proc/self/stat`'s rss (4 KiB on the platforms meshlens runs on).
const PAGE_SIZE: u64 = 4096;

/// Appends the current `process_*` families to `out` (nothing where there is no procfs).
pub fn encode_current(out: &mut String) {
    if let Some(stats) = ProcessStats::read() {
        stats.encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_texts() {
        let stat = "4242 (meshlens (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 12345 \
                    104857600 2560 18446744073709551615 1 1 0 0 0 0 0 4096 17987 0 0 0 17 1 0 0 0 0 0";
        let boot = "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        let s = ProcessStats::parse(stat, boot, limits, 12).unwrap();
        assert_eq!(s.start_time_seconds, 1_700_000_123.45);
        assert_eq!(s.cpu_seconds_total, 3.0);
        assert_eq!(s.resident_memory_bytes, 2560 * 4096);
        assert_eq!(s.virtual_memory_bytes, 104_857_600);
        assert_eq!((s.open_fds, s.max_fds), (12, Some(1024)));
        let unlimited = "Max open files            unlimited            unlimited            files\n";
        assert_eq!(ProcessStats::parse(stat, boot, unlimited, 1).unwrap().max_fds, None);
        assert!(ProcessStats::parse("garbage", boot, limits, 1).is_none());
    }

    #[test]
    fn encodes_every_family_once() {
        let mut out = String::new();
        encode_current(&mut out);
        for name in FAMILIES {
            assert_eq!(out.matches(&format!("# TYPE {name} ")).count(), 1, "{out}");
        }
        let start = out.lines().find_map(|l| l.strip_prefix("process_start_time_seconds ")).unwrap();
        let start: f64 = start.parse().unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(start > now - 3600.0 && start <= now + 1.0, "{start} vs {now}");
    }
}
