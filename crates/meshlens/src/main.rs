//! The `meshlens` binary.

fn main() {}
