//! The developer commands' library: the order pipeline's demo, dev loop and sender, and the
//! event schemas (`cargo xtask schemas`), over the local cloud and local Lambda of
//! `eventkit-local` (local/), re-exported here under their former names. The `cargo xtask`
//! binary and the end-to-end tests (`tests/tests/e2e_*.rs`) share it.
#![warn(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod chaos;
pub mod demo;
pub mod dev;
pub mod functions;
pub mod proxy;
pub mod schemas;
pub mod seed;
pub mod send;

pub use eventkit_local as local_lambda;
pub use eventkit_local::{cloud, progress};
