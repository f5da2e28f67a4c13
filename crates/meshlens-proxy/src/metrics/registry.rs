//! `Registry` (the ordered list of metric families a scrape encodes) and generic labelled `Family`s.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use super::encode::{is_valid_metric_name, write_header};
use super::{Counter, Gauge, Histogram, LabelSet};

/// A metric type that a [`Family`] can hold.
pub trait Metric: Default + Send + Sync + 'static {
    /// The `# TYPE` keyword: `counter`, `gauge` or `histogram`.
    const TYPE: &'static str;
    /// Writes this series' sample line(s); `labels` is the rendered label set (may be empty).
    fn encode(&self, name: &str, labels: &str, out: &mut String);
}

/// Something that writes one or more complete families (HELP, TYPE and samples) at scrape time.
pub(crate) trait Collect: Send + Sync {
    fn encode(&self, out: &mut String);
}

/// All metric families of one proxy, encoded in registration order.
///
/// Cheap to clone (shared inside). Registration locks; counting never touches the registry.
/// Every registered family is written with its `# HELP` and `# TYPE` lines even before it has a
/// series: promtool accepts that, and a scraper sees which families exist.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    names: Vec<String>,
    collectors: Vec<Arc<dyn Collect>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Registry").field("families", &inner.names).finish()
    }
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Appends the text format 0.0.4 of every family to `out`.
    pub fn encode(&self, out: &mut String) {
        let collectors = self.inner.lock().unwrap_or_else(PoisonError::into_inner).collectors.clone();
        for c in collectors {
            c.encode(out);
        }
    }

    /// [`encode`](Self::encode) into a new string.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        self.encode(&mut out);
        out
    }

    /// Registers `collector`, which writes the families `names`.
    ///
    /// # Panics
    /// When a name is not a valid metric name or is already registered (a programming error).
    pub(crate) fn register(&self, names: &[&str], collector: Arc<dyn Collect>) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for name in names {
            assert!(is_valid_metric_name(name), "invalid metric name {name:?}");
            assert!(!inner.names.iter().any(|n| n == name), "metric family {name:?} registered twice");
        }
        inner.names.extend(names.iter().map(|n| n.to_string()));
        inner.collectors.push(collector);
    }

    /// Registers a labelled family of `M`. For counters, end `name` with `_total` (Linkerd's legacy
    /// naming: the sample name equals the family name).
    ///
    /// # Panics
    /// When `name` is invalid or already registered.
    pub fn family<M: Metric>(&self, name: &str, help: &str) -> Family<M> {
        let inner = Arc::new(FamilyInner {
            name: name.to_owned(),
            help: help.to_owned(),
            series: Mutex::new(FamilySeries { index: HashMap::new(), order: Vec::new() }),
        });
        self.register(&[name], inner.clone());
        Family { inner }
    }

    pub fn counter_family(&self, name: &str, help: &str) -> CounterFamily {
        self.family(name, help)
    }

    pub fn gauge_family(&self, name: &str, help: &str) -> GaugeFamily {
        self.family(name, help)
    }

    pub fn histogram_family(&self, name: &str, help: &str) -> HistogramFamily {
        self.family(name, help)
    }

    /// An unlabelled counter: a family with its single, empty-labelled series.
    pub fn counter(&self, name: &str, help: &str) -> Arc<Counter> {
        self.counter_family(name, help).get_or_create(&LabelSet::new())
    }

    /// An unlabelled gauge: a family with its single, empty-labelled series.
    pub fn gauge(&self, name: &str, help: &str) -> Arc<Gauge> {
        self.gauge_family(name, help).get_or_create(&LabelSet::new())
    }
}

pub type CounterFamily = Family<Counter>;
pub type GaugeFamily = Family<Gauge>;
pub type HistogramFamily = Family<Histogram>;

/// A metric family whose series are told apart by a [`LabelSet`]; series are written in creation order.
pub struct Family<M> {
    inner: Arc<FamilyInner<M>>,
}

impl<M> Clone for Family<M> {
    fn clone(&self) -> Self {
        Family { inner: self.inner.clone() }
    }
}

impl<M> fmt::Debug for Family<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Family").field("name", &self.inner.name).finish_non_exhaustive()
    }
}

struct FamilyInner<M> {
    name: String,
    help: String,
    series: Mutex<FamilySeries<M>>,
}

struct FamilySeries<M> {
    index: HashMap<LabelSet, Arc<M>>,
    order: Vec<(LabelSet, Arc<M>)>,
}

impl<M: Metric> Family<M> {
    /// The series for `labels`, created on first use. Locks and hashes: resolve once, keep the `Arc`.
    pub fn get_or_create(&self, labels: &LabelSet) -> Arc<M> {
        let mut series = self.inner.series.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = series.index.get(labels) {
            return m.clone();
        }
        let m = Arc::new(M::default());
        series.index.insert(labels.clone(), m.clone());
        series.order.push((labels.clone(), m.clone()));
        m
    }

    /// Number of series so far, so callers can cap label cardinality themselves.
    pub fn series_count(&self) -> usize {
        self.inner.series.lock().unwrap_or_else(PoisonError::into_inner).order.len()
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }
}

impl<M: Metric> Collect for FamilyInner<M> {
    fn encode(&self, out: &mut String) {
        write_header(out, &self.name, &self.help, M::TYPE);
        let series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        for (labels, m) in &series.order {
            m.encode(&self.name, labels.as_str(), out);
        }
    }
}
