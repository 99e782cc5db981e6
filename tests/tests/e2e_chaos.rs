//! `cargo xtask chaos`, small: the order pipeline run locally as its real binaries while
//! function processes are killed mid-batch, crashes are injected at every dangerous point,
//! DynamoDB fails (errors, lost responses, an outage) and publishing fails, with a third of
//! the orders sent several times. Nothing may be lost and nothing doubled, every fault kind
//! must have struck (or the run proved nothing), and every record a crash interrupted must
//! have been seen done afterwards.

use clap::Parser;
use eventkit_tests::unique_name;
use xtask::chaos::{run_chaos, ChaosArgs};
use xtask::cloud::workspace_root;
use xtask::local_lambda::clients::Endpoints;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    chaos: ChaosArgs,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_chaos_run_loses_nothing_and_doubles_nothing() {
    // The shares are far above the default run's so that a run this small meets every fault.
    let args = Cli::parse_from([
        "chaos",
        "--orders=60",
        "--rate=20",
        "--fault-tail=20",
        "--kill-every=4",
        "--crash-rate=0.01",
        "--dynamodb-fail-share=0.03",
        "--dynamodb-lose-share=0.02",
        "--dynamodb-slow-share=0.05",
        "--outages=1",
        "--outage-seconds=4",
        "--publish-fail-share=0.2",
        "--timeout=400",
    ])
    .chaos;
    let logs = workspace_root()
        .join(".local-cloud/e2e")
        .join(unique_name("chaos"));
    let report = run_chaos(&args, &Endpoints::from_env(), &logs)
        .await
        .expect("the chaos run runs");
    report.print();

    assert_eq!(report.unsettled, None, "seed {}", report.seed);
    for check in &report.checks {
        assert!(
            check.holds(),
            "{}: {} lost, {} doubled: {:?} (seed {})",
            check.name,
            check.lost,
            check.doubled,
            check.details,
            report.seed
        );
    }
    assert_eq!((report.lost(), report.doubled()), (0, 0));

    // Every kind of fault struck.
    assert!(!report.injected.kills.is_empty(), "no process was killed");
    let crashes = report.crashes_by_kind();
    assert!(
        crashes.keys().any(|kind| kind.starts_with("crash ")),
        "no crash point was hit: {crashes:?}"
    );
    for kind in ["failed", "dropped", "response lost", "slow", "outage"] {
        assert!(
            report.injected.dynamodb.get(kind).copied().unwrap_or(0) > 0,
            "no DynamoDB request {kind}: {:?}",
            report.injected.dynamodb
        );
    }
    assert!(
        report.injected.publish.get("failed").copied().unwrap_or(0) > 0,
        "no publish failed: {:?}",
        report.injected.publish
    );
    // And each record a crash interrupted was accounted for afterwards: done, or (a poison
    // copy whose last allowed receive the crash was) moved to its dead-letter queue, where
    // the invariants above say only poison and work already done may be.
    for crash in &report.crashes {
        assert_eq!(
            crash.recovered(),
            crash.records.len(),
            "{} (seed {})",
            crash.describe(),
            report.seed
        );
    }
    let _ = std::fs::remove_dir_all(&logs);
}
