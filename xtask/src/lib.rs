//! The developer commands' library: the local cloud, progress display, and the local Lambda
//! that runs the order pipeline's functions as real binaries against the local cloud. The
//! `cargo xtask` binary and the end-to-end tests (`tests/tests/e2e_*.rs`) share it.
#![warn(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod cloud;
pub mod demo;
pub mod dev;
pub mod local_lambda;
pub mod progress;
pub mod proxy;
pub mod seed;
pub mod send;
