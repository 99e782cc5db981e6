//! The infrastructure checks: the SAM template (`infra/template.yaml`) passes cfn-lint,
//! `sam validate --lint` and checkov, `sam build` produces every function's bootstrap, the
//! template's structure keeps the pipeline's guarantees (DLQs, retries, partial batch
//! failures, encryption, TLS-only access), every role is exactly as wide as its code and no
//! wider (iam.rs), only the pipeline puts its events and only named producers publish orders
//! (access.rs), every function keeps its idempotency records
//! past the last redelivery the template allows, every SQS consumer outlasts a 3-hour
//! outage without dead-lettering a healthy message, no fault switch reaches a deploy build, and
//! every sample event in `events/` parses as the Lambda event its name says.
//!
//! The tools come from `cargo xtask tools` (which `cargo xtask test` runs), found through
//! `EVENTKIT_TOOLS_BIN`.

#[path = "infra_checks/support.rs"]
mod support;

#[path = "infra_checks/tools.rs"]
mod tools;

#[path = "infra_checks/template.rs"]
mod template;

#[path = "infra_checks/samples.rs"]
mod samples;

#[path = "infra_checks/deploy.rs"]
mod deploy;

#[path = "infra_checks/iam.rs"]
mod iam;

#[path = "infra_checks/access.rs"]
mod access;

#[path = "infra_checks/horizon.rs"]
mod horizon;

#[path = "infra_checks/faults.rs"]
mod faults;

#[path = "infra_checks/outages.rs"]
mod outages;
