//! `cargo xtask chaos`, small: the order pipeline run locally as its real binaries while
//! function processes are killed mid-batch, crashes are injected at every dangerous point,
//! DynamoDB fails (errors, lost responses, an outage) and publishing fails, with a third of
//! the orders sent several times, and a few orders padded near the carriers' limits. Nothing
//! may be lost and nothing doubled, every fault kind must have struck (or the run proved
//! nothing), every record a crash interrupted must have been seen done afterwards, and the
//! oversized orders must have been carried whole or refused at staging, as their size says.

use std::time::{Duration, Instant};

use clap::Parser;
use eventkit_tests::unique_name;
use tokio_util::sync::CancellationToken;
use xtask::chaos::load::Oversize;
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
        "--provider-outages=1",
        "--provider-outage-seconds=4",
        "--publish-fail-share=0.2",
        "--late-share=0.2",
        // Three of the 60: two carried whole (192 to 254 KiB), one refused at staging
        // (400 KiB to 1 MiB).
        "--oversized-share=0.05",
        "--timeout=400",
    ])
    .chaos;
    let logs = workspace_root()
        .join(".local-cloud/e2e")
        .join(unique_name("chaos"));
    let never = CancellationToken::new();
    let report = run_chaos(&args, &Endpoints::from_env(), &logs, never)
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
    // The payment provider went down on its own, and the report says what it was asked then.
    let provider = &report.injected.outages["payment provider"];
    assert_eq!(provider.len(), 1, "{:?}", report.injected.outages);
    assert_eq!(
        provider[0].requests,
        report.injected.provider.get("outage").copied().unwrap_or(0),
        "every request answered by the outage is counted in the outage's row"
    );
    // Each outage's backlog drained once its dependency was back, within the run.
    for (dependency, outages) in &report.injected.outages {
        for outage in outages {
            let drained = outage.drained.unwrap_or_else(|| {
                panic!("the backlog of {dependency}'s outage never drained: {outage:?}")
            });
            assert!(
                drained <= report.load_time + report.settle_time,
                "{dependency}: drained {drained:?} after recovery, longer than the run"
            );
        }
    }
    // Fifteen days later (past the dead-letter queues' retention), the copies that come back
    // are absorbed: the records were aged, copies reached the consumers and were replayed,
    // and the invariants read again still hold. The control (records aged past their
    // retention) shows the ageing is real: a copy then runs again.
    let late = report.late.as_ref().expect("the late copies came back");
    assert!(late.brought.aged > 0, "{late:?}");
    assert!(!late.brought.orders_resent.is_empty(), "{late:?}");
    assert!(late.brought.events_republished > 0, "{late:?}");
    assert!(
        late.replayed >= late.brought.orders_resent.len() as u64 + late.brought.redriven,
        "every late copy is replayed at least once: {late:?}"
    );
    assert_eq!(late.unsettled, None);
    for check in &late.checks {
        assert!(check.holds(), "after the late copies: {check:?}");
    }
    assert_eq!(late.control_reran, Some(true), "{late:?}");
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
    // Both oversized outcomes happened and were checked: the carried orders' StockReserved
    // staged and published, the refused order dead-lettered for its size with nothing
    // staged or reserved (the check holds, above).
    let kinds = |kind: Oversize| {
        report
            .oversized
            .iter()
            .filter(|order| order.kind == kind)
            .count()
    };
    assert_eq!((kinds(Oversize::Carried), kinds(Oversize::Refused)), (2, 1));
    let oversized = report
        .checks
        .iter()
        .find(|check| check.name == "oversized carried whole or refused at staging")
        .expect("the oversized orders are checked");
    assert_eq!(oversized.expected, 3, "{:?}", oversized.details);
    let refused: usize = report
        .outcomes
        .iter()
        .filter(|(outcome, _)| outcome.contains("refused at staging"))
        .map(|(_, count)| count)
        .sum();
    assert_eq!(refused, 1, "{:?}", report.outcomes);
    let rows = report.oversized_rows();
    assert!(
        rows.iter().all(|(_, count)| *count > 0),
        "a row per kind: {rows:?}"
    );
    let _ = std::fs::remove_dir_all(&logs);
}

/// Ctrl-C (or SIGTERM) during a run: it ends with an error once its functions are stopped
/// and its stack deleted, instead of leaving both behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_chaos_run_stops_its_functions_and_deletes_its_stack() {
    let args = Cli::parse_from(["chaos", "--orders=200", "--rate=5"]).chaos;
    let logs = workspace_root()
        .join(".local-cloud/e2e")
        .join(unique_name("chaos-interrupted"));
    let interrupt = CancellationToken::new();
    // Interrupted once the functions run and orders flow: payments has logged.
    let watcher = {
        let interrupt = interrupt.clone();
        let payments_log = logs.join("payments.log");
        tokio::spawn(async move {
            let started = Instant::now();
            while std::fs::metadata(&payments_log).map_or(true, |m| m.len() == 0) {
                if started.elapsed() > Duration::from_secs(900) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            interrupt.cancel();
            Instant::now()
        })
    };
    let ended = run_chaos(&args, &Endpoints::from_env(), &logs, interrupt).await;
    let interrupted_at = watcher.await.expect("the watcher ran");
    let error = match ended {
        Ok(report) => panic!("an interrupted run reported: {} orders", report.orders),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        interrupted_at.elapsed() < Duration::from_secs(30),
        "it ended {:?} after the interrupt",
        interrupted_at.elapsed()
    );
    let stack = error
        .strip_prefix("interrupted: the functions stopped, stack ")
        .and_then(|rest| rest.strip_suffix(" deleted"))
        .unwrap_or_else(|| panic!("not an interrupt: {error}"));
    assert!(stack.starts_with("chaos-"), "{error}");
    let sqs = xtask::local_lambda::clients::Clients::new(&Endpoints::from_env())
        .await
        .sqs;
    let left = sqs
        .list_queues()
        .queue_name_prefix(stack)
        .send()
        .await
        .expect("the queues are listed");
    assert_eq!(
        left.queue_urls(),
        &[] as &[String],
        "the stack's queues are gone"
    );
    // Its functions' logs end: nothing runs that could still write to them.
    let size = |name: &str| std::fs::metadata(logs.join(name)).map_or(0, |m| m.len());
    let before: Vec<u64> = ["payments.log", "inventory.log", "relay.log"]
        .iter()
        .map(|name| size(name))
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after: Vec<u64> = ["payments.log", "inventory.log", "relay.log"]
        .iter()
        .map(|name| size(name))
        .collect();
    assert_eq!(before, after, "a function still writes to its log");
    let _ = std::fs::remove_dir_all(&logs);
}
