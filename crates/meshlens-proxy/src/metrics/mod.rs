//! Prometheus metrics of the proxy: lock-free counters and histograms, and our own text encoder.
