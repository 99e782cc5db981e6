"""The Powertools for AWS Lambda (Python) contender of `cargo xtask bench`.

Powertools is used as its batch-processing documentation shows for idempotency: a
BatchProcessor whose record handler calls a function decorated with `idempotent_function`,
keyed by the envelope's `eventId` (IdempotencyConfig(event_key_jmespath="eventId")), on a
DynamoDBPersistenceLayer, with the Lambda context registered on every invocation. The
BatchProcessor runs the records of a batch one after another (its documented default).

It speaks the protocol of xtask/src/bench/contender/protocol.rs: the warm-up batch, then
every batch once (all new) and again (all duplicates), a result line after each phase.

    harness.py <workload.jsonl> <table>
"""

import json
import resource
import sys
import time

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

INVOCATION_SECONDS = 60.0

workload_path, table = sys.argv[1], sys.argv[2]

processor = BatchProcessor(event_type=EventType.SQS)
persistence = DynamoDBPersistenceLayer(table_name=table)
config = IdempotencyConfig(event_key_jmespath="eventId")
runs = 0


@idempotent_function(data_keyword_argument="order", config=config, persistence_store=persistence)
def reserve(order: dict) -> dict:
    global runs
    runs += 1
    data = order["data"]
    units = sum(item["quantity"] for item in data["items"])
    return {"orderId": data["orderId"], "units": units, "reserved": True}


def record_handler(record: SQSRecord):
    return reserve(order=record.json_body)


class Context:
    """The parts of Lambda's context that Powertools reads."""

    function_name = "bench-python"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:bench-python"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/bench-python"
    log_stream_name = "bench"

    def __init__(self):
        self.deadline = time.time() + INVOCATION_SECONDS

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


def invoke(payload: str) -> int:
    """One invocation, as Lambda's runtime makes it: JSON in, JSON out."""
    event = json.loads(payload)
    context = Context()
    config.register_lambda_context(context)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    json.dumps(response)
    return len(response.get("batchItemFailures", []))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def say(value: dict) -> None:
    print("@bench " + json.dumps(value), flush=True)


def main() -> None:
    with open(workload_path) as file:
        lines = [line for line in file.read().splitlines() if line.strip()]
    warmup, batches = lines[0], lines[1:]
    if invoke(warmup):
        raise SystemExit("records of the warm-up batch failed")
    say({"ready": True})
    sys.stdin.readline()
    for phase in ("new", "duplicate"):
        runs_before = runs
        cpu_before = cpu_seconds()
        started = time.perf_counter()
        batch_ms = []
        failures = 0
        for batch in batches:
            batch_started = time.perf_counter()
            failures += invoke(batch)
            batch_ms.append((time.perf_counter() - batch_started) * 1e3)
        say(
            {
                "phase": phase,
                "seconds": time.perf_counter() - started,
                "cpu_seconds": cpu_seconds() - cpu_before,
                "batch_ms": batch_ms,
                "failures": failures,
                "ran": runs - runs_before,
            }
        )
        sys.stdin.readline()


main()
