//! Weighted backend choice for traffic splits (SMI `TrafficSplit`) and ServiceProfile `dstOverrides`: relative
//! integer weights, a weight of zero never picked, as Linkerd's `WeightedIndex` over u32 weights
//! (`linkerd/distribute`). Weights need not sum to anything in particular.

use meshlens_api::profile::{Quantity, TrafficSplit};

/// Picks one of its items at random in proportion to its weight. Zero-weight items are left out.
/// Picking is O(log n) (binary search over cumulative weights) and allocation-free.
#[derive(Clone, Debug)]
pub struct WeightedPicker<T> {
    items: Vec<T>,
    weights: Vec<u32>,
    /// `cumulative[i]` = the sum of the weights of items `0..=i`.
    cumulative: Vec<u64>,
}

impl<T> WeightedPicker<T> {
    /// A picker over `(item, weight)` pairs, in order; pairs with weight 0 are dropped.
    pub fn new(weighted: impl IntoIterator<Item = (T, u32)>) -> WeightedPicker<T> {
        let (mut items, mut weights, mut cumulative) = (Vec::new(), Vec::new(), Vec::new());
        let mut total = 0u64;
        for (item, weight) in weighted.into_iter().filter(|(_, w)| *w > 0) {
            total += u64::from(weight);
            items.push(item);
            weights.push(weight);
            cumulative.push(total);
        }
        WeightedPicker { items, weights, cumulative }
    }

    /// An item picked at random by weight (fastrand's thread-local generator); `None` when there is none
    /// with a weight above zero.
    pub fn pick(&self) -> Option<&T> {
        self.pick_at(fastrand::u64(0..self.total_weight().max(1)))
    }

    /// Like [`pick`](Self::pick), drawing from `rng` (seed it for reproducible picks).
    pub fn pick_with(&self, rng: &mut fastrand::Rng) -> Option<&T> {
        self.pick_at(rng.u64(0..self.total_weight().max(1)))
    }

    /// The sum of the weights.
    pub fn total_weight(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// How many items can be picked (weight above zero).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing can be picked.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The pickable items with their weights, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&T, u32)> {
        self.items.iter().zip(self.weights.iter().copied())
    }

    /// The item whose cumulative range `[previous total, total)` holds `x`.
    fn pick_at(&self, x: u64) -> Option<&T> {
        let i = self.cumulative.partition_point(|&c| c <= x);
        self.items.get(i)
    }
}

/// A Kubernetes quantity as a relative weight: its value in thousandths (`"900m"` → 900, `1` → 1000), as
/// Linkerd's controller reads it (`MilliValue()`; the ×10 it adds for "decimillis" does not change relative
/// weights). Errors for what is not a quantity, negative values and values above `u32::MAX` thousandths.
pub fn quantity_weight(q: &Quantity) -> Result<u32, String> {
    let milli = q.milli_value().ok_or_else(|| format!("weight '{q}' is not a quantity"))?;
    if milli < 0 {
        return Err(format!("weight '{q}' is negative"));
    }
    u32::try_from(milli).map_err(|_| format!("weight '{q}' is too large"))
}

/// The backends of a `TrafficSplit` with their relative weights, in order: `(backend service name, weight)`.
/// Zero weights are kept (so per-backend counts can show a 0); [`WeightedPicker::new`] leaves them out.
/// When every weight is zero the picker is empty — Linkerd then drops all the overrides and the apex
/// service itself gets the traffic. Errors: no backends, an empty service name, a weight that is not a
/// non-negative quantity.
pub fn split_backends(split: &TrafficSplit) -> Result<Vec<(String, u32)>, String> {
    if split.spec.backends.is_empty() {
        return Err("a traffic split needs at least one backend".to_string());
    }
    split
        .spec
        .backends
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if b.service.trim().is_empty() {
                return Err(format!("backends[{i}]: service is empty"));
            }
            let weight = quantity_weight(&b.weight).map_err(|e| format!("backends[{i}] ({}): {e}", b.service))?;
            Ok((b.service.clone(), weight))
        })
        .collect()
}

#[cfg(test)]
#[path = "tests/split.rs"]
mod tests;
