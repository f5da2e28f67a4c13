//! Test helpers for meshlens (dev-dependency only).
