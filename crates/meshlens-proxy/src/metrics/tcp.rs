//! Linkerd's transport families `tcp_open_total`, `tcp_open_connections`, `tcp_read_bytes_total`,
//! `tcp_write_bytes_total` and `tcp_close_total`, per target, with a guard per connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use meshlens_api::labels;

use super::encode::{write_header, write_sample};
use super::registry::{Collect, Registry};
use super::series_list::SeriesList;
use super::{Counter, Gauge, LabelSet};

/// The transport families of one registry. Cheap to clone.
#[derive(Clone)]
pub struct TcpMetrics {
    inner: Arc<TcpFamilies>,
}

struct TcpFamilies {
    targets: Mutex<HashMap<LabelSet, Arc<TcpTargetMetrics>>>,
    order: SeriesList<TcpTargetMetrics>,
}

impl TcpMetrics {
    /// Registers the five `tcp_*` families.
    ///
    /// # Panics
    /// When one of the names is already registered.
    pub fn register(reg: &Registry) -> TcpMetrics {
        let inner = Arc::new(TcpFamilies { targets: Mutex::new(HashMap::new()), order: SeriesList::default() });
        let names = [
            labels::TCP_OPEN_TOTAL,
            labels::TCP_OPEN_CONNECTIONS,
            labels::TCP_READ_BYTES_TOTAL,
            labels::TCP_WRITE_BYTES_TOTAL,
            labels::TCP_CLOSE_TOTAL,
        ];
        reg.register(&names, inner.clone());
        TcpMetrics { inner }
    }

    /// The handle for one target (`direction`, `peer`, `target_addr`, `tls`, …), created on first
    /// use. Locks and hashes: call once per target, not per connection.
    pub fn target(&self, labels: LabelSet) -> Arc<TcpTargetMetrics> {
        let mut targets = self.inner.targets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = targets.get(&labels) {
            return t.clone();
        }
        let t = Arc::new(TcpTargetMetrics {
            labels: labels.clone(),
            open_total: Counter::new(),
            open: Gauge::new(),
            read_bytes: Counter::new(),
            write_bytes: Counter::new(),
            closed: Counter::new(),
            closed_errno: SeriesList::default(),
        });
        targets.insert(labels, t.clone());
        self.inner.order.push(t.clone());
        t
    }
}

/// A single-valued family: name, HELP, TYPE and the value of one target.
type Simple = (&'static str, &'static str, &'static str, fn(&TcpTargetMetrics) -> i128);

/// The single-valued families, in output order (`tcp_close_total` follows them).
const SIMPLE: [Simple; 4] = [
    (labels::TCP_OPEN_TOTAL, "Total count of opened connections.", "counter", |t| t.open_total.get().into()),
    (labels::TCP_OPEN_CONNECTIONS, "Number of currently-open connections.", "gauge", |t| t.open.get().into()),
    (labels::TCP_READ_BYTES_TOTAL, "Total count of bytes read from peers.", "counter", |t| t.read_bytes.get().into()),
    (labels::TCP_WRITE_BYTES_TOTAL, "Total count of bytes written to peers.", "counter", |t| {
        t.write_bytes.get().into()
    }),
];

impl Collect for TcpFamilies {
    fn encode(&self, out: &mut String) {
        let targets = self.order.snapshot();
        for (name, help, kind, value) in SIMPLE {
            write_header(out, name, help, kind);
            for t in targets.iter() {
                write_sample(out, name, "", &[t.labels.as_str()], value(t));
            }
        }
        let name = labels::TCP_CLOSE_TOTAL;
        write_header(out, name, "Total count of closed connections.", "counter");
        for t in targets.iter() {
            write_sample(out, name, "", &[t.labels.as_str(), "errno=\"\""], t.closed.get());
            for s in t.closed_errno.snapshot().iter() {
                write_sample(out, name, "", &[t.labels.as_str(), &s.label], s.count.get());
            }
        }
    }
}

/// The transport metrics of one target.
pub struct TcpTargetMetrics {
    labels: LabelSet,
    open_total: Counter,
    open: Gauge,
    read_bytes: Counter,
    write_bytes: Counter,
    /// `tcp_close_total{…,errno=""}`
    closed: Counter,
    /// `tcp_close_total{…,errno="…"}`, in creation order.
    closed_errno: SeriesList<CloseSeries>,
}

struct CloseSeries {
    errno: i32,
    /// `errno="…"`
    label: Box<str>,
    count: Counter,
}

impl TcpTargetMetrics {
    /// Counts `tcp_open_total` and raises `tcp_open_connections`; the guard undoes the gauge and
    /// counts `tcp_close_total` when dropped.
    pub fn open(self: &Arc<Self>) -> TcpConnGuard {
        self.open_total.inc();
        self.open.inc();
        TcpConnGuard { target: self.clone(), errno: AtomicI32::new(0) }
    }

    fn close(&self, errno: i32) {
        self.open.dec();
        if errno == 0 {
            self.closed.inc();
        } else {
            let make = || CloseSeries {
                errno,
                label: format!("errno=\"{}\"", errno_name(errno)).into(),
                count: Counter::new(),
            };
            self.closed_errno.find_or_push(|s| s.errno == errno, make).count.inc();
        }
    }
}

/// One open connection. Byte counts are added as they flow; dropping the guard closes it in the metrics.
pub struct TcpConnGuard {
    target: Arc<TcpTargetMetrics>,
    errno: AtomicI32,
}

impl TcpConnGuard {
    /// Adds `n` bytes read from the peer to `tcp_read_bytes_total`.
    #[inline]
    pub fn read(&self, n: u64) {
        self.target.read_bytes.add(n);
    }

    /// Adds `n` bytes written to the peer to `tcp_write_bytes_total`.
    #[inline]
    pub fn wrote(&self, n: u64) {
        self.target.write_bytes.add(n);
    }

    /// Closes with `errno="<name>"` (e.g. `ECONNRESET`) instead of `errno=""`; 0 clears it.
    pub fn set_errno(&self, errno: i32) {
        self.errno.store(errno, Relaxed);
    }

    /// [`set_errno`](Self::set_errno) from an I/O error, when it carries an OS error code.
    pub fn set_io_error(&self, err: &std::io::Error) {
        if let Some(errno) = err.raw_os_error() {
            self.set_errno(errno);
        }
    }
}

impl Drop for TcpConnGuard {
    fn drop(&mut self) {
        self.target.close(*self.errno.get_mut());
    }
}

/// The symbolic name of a (Linux) errno as Linkerd prints it, or the number when unknown.
fn errno_name(errno: i32) -> String {
    let name = if cfg!(target_os = "linux") {
        match errno {
            1 => "EPERM",
            4 => "EINTR",
            5 => "EIO",
            9 => "EBADF",
            11 => "EAGAIN",
            12 => "ENOMEM",
            13 => "EACCES",
            22 => "EINVAL",
            24 => "EMFILE",
            32 => "EPIPE",
            98 => "EADDRINUSE",
            99 => "EADDRNOTAVAIL",
            100 => "ENETDOWN",
            101 => "ENETUNREACH",
            103 => "ECONNABORTED",
            104 => "ECONNRESET",
            105 => "ENOBUFS",
            107 => "ENOTCONN",
            110 => "ETIMEDOUT",
            111 => "ECONNREFUSED",
            112 => "EHOSTDOWN",
            113 => "EHOSTUNREACH",
            _ => "",
        }
    } else {
        ""
    };
    if name.is_empty() { errno.to_string() } else { name.to_owned() }
}
