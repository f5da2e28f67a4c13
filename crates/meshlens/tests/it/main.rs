//! Whole-binary tests: `meshlens` processes started the way a user starts them.

mod proxy;
