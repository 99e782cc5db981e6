// The Powertools for AWS Lambda (TypeScript) contender of `cargo xtask bench`.
//
// Powertools is used as its idempotency documentation shows for batch processing: a
// BatchProcessor whose record handler calls a function wrapped with `makeIdempotent`, keyed
// by the envelope's `eventId` (eventKeyJmesPath), on a DynamoDBPersistenceLayer, with the
// Lambda context registered on every invocation. `processPartialResponse` runs the records
// of a batch in parallel (its documented default for BatchProcessor).
//
// It speaks the protocol of xtask/src/bench/contender/protocol.rs: the warm-up batch, then
// every batch once (all new) and again (all duplicates), a result line after each phase.
//
//     node harness.mjs <workload.jsonl> <table>

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import {
  BatchProcessor,
  EventType,
  processPartialResponse,
} from '@aws-lambda-powertools/batch';
import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';

const INVOCATION_MS = 60_000;
const [workloadPath, tableName] = process.argv.slice(2);

const processor = new BatchProcessor(EventType.SQS);
const persistenceStore = new DynamoDBPersistenceLayer({ tableName });
const config = new IdempotencyConfig({ eventKeyJmesPath: 'eventId' });
let runs = 0;

const reserve = makeIdempotent(
  async (order) => {
    runs += 1;
    const units = order.data.items.reduce((sum, item) => sum + item.quantity, 0);
    return { orderId: order.data.orderId, units, reserved: true };
  },
  { persistenceStore, config }
);

const recordHandler = async (record) => reserve(JSON.parse(record.body));

// The parts of Lambda's context that Powertools reads.
const lambdaContext = () => {
  const deadline = Date.now() + INVOCATION_MS;
  return {
    functionName: 'bench-node',
    functionVersion: '$LATEST',
    memoryLimitInMB: '1024',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:bench-node',
    awsRequestId: '00000000-0000-0000-0000-000000000000',
    logGroupName: '/aws/lambda/bench-node',
    logStreamName: 'bench',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
};

// One invocation, as Lambda's runtime makes it: JSON in, JSON out.
const invoke = async (payload) => {
  const event = JSON.parse(payload);
  const context = lambdaContext();
  config.registerLambdaContext(context);
  const response = await processPartialResponse(event, recordHandler, processor, { context });
  JSON.stringify(response);
  return response.batchItemFailures.length;
};

const cpuSeconds = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

const say = (value) => process.stdout.write(`@bench ${JSON.stringify(value)}\n`);

const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const waitForParent = () => stdin.next();

const lines = readFileSync(workloadPath, 'utf8')
  .split('\n')
  .filter((line) => line.trim() !== '');
const [warmup, ...batches] = lines;
if ((await invoke(warmup)) > 0) {
  throw new Error('records of the warm-up batch failed');
}
say({ ready: true });
await waitForParent();
for (const phase of ['new', 'duplicate']) {
  const runsBefore = runs;
  const cpuBefore = cpuSeconds();
  const started = performance.now();
  const batchMs = [];
  let failures = 0;
  for (const batch of batches) {
    const batchStarted = performance.now();
    failures += await invoke(batch);
    batchMs.push(performance.now() - batchStarted);
  }
  say({
    phase,
    seconds: (performance.now() - started) / 1e3,
    cpu_seconds: cpuSeconds() - cpuBefore,
    batch_ms: batchMs,
    failures,
    ran: runs - runsBefore,
  });
  await waitForParent();
}
process.exit(0);
