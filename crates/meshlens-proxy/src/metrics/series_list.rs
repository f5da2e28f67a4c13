//! `SeriesList`: an append-only list of series with lock-free reads, kept in creation order.

use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

/// Append-only list: readers (`find`, `snapshot`) never lock; writers serialise on a mutex and
/// publish a new copy of the list. Meant for a handful to a few hundred entries that are created
/// rarely and read on every request or scrape.
pub(crate) struct SeriesList<T> {
    items: ArcSwap<Vec<Arc<T>>>,
    write: Mutex<()>,
}

impl<T> Default for SeriesList<T> {
    fn default() -> Self {
        SeriesList { items: ArcSwap::from_pointee(Vec::new()), write: Mutex::new(()) }
    }
}

impl<T> SeriesList<T> {
    /// All entries, in creation order.
    pub(crate) fn snapshot(&self) -> Arc<Vec<Arc<T>>> {
        self.items.load_full()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.items.load().len()
    }

    /// Appends an entry that is known to be new (its key is guarded elsewhere, e.g. by a `OnceLock`).
    pub(crate) fn push(&self, item: Arc<T>) {
        let _w = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        self.publish_with(item);
    }

    /// The first entry matching `pred`, without locking or allocating.
    #[inline]
    pub(crate) fn find(&self, pred: impl Fn(&T) -> bool) -> Option<Arc<T>> {
        self.items.load().iter().find(|t| pred(t)).cloned()
    }

    /// The first entry matching `pred`, or a new one from `make` (created at most once per key).
    pub(crate) fn find_or_push(&self, pred: impl Fn(&T) -> bool, make: impl FnOnce() -> T) -> Arc<T> {
        if let Some(found) = self.find(&pred) {
            return found;
        }
        let _w = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = self.find(&pred) {
            return found;
        }
        let item = Arc::new(make());
        self.publish_with(item.clone());
        item
    }

    /// Caller holds `self.write`.
    fn publish_with(&self, item: Arc<T>) {
        let current = self.items.load();
        let mut next = Vec::with_capacity(current.len() + 1);
        next.extend(current.iter().cloned());
        next.push(item);
        self.items.store(Arc::new(next));
    }
}
