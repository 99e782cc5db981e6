//! What a function is, as the template declares it: what the host runs and what each of its
//! execution environments (the supervisor's processes) is started with. A leaf: the host
//! and the supervisor both read it, neither owns it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// What a function is, as the template declares it.
#[derive(Clone, Debug)]
pub struct FunctionSpec {
    /// Its logical id in the template.
    pub logical_id: String,
    /// Its name (`AWS_LAMBDA_FUNCTION_NAME`).
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// The binary to run.
    pub binary: PathBuf,
    /// Its timeout.
    pub timeout: Duration,
    /// Its memory size in MB.
    pub memory_mb: u32,
    /// Every variable its process gets, but `AWS_LAMBDA_RUNTIME_API`.
    pub environment: BTreeMap<String, String>,
}
