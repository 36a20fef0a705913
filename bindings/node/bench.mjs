// Per-call overhead of failover-core against opossum and cockatiel on one workload: a provider
// call that does nothing (`async () => 1`), so only the library's own work is measured.
//
//   node bench.mjs            # prints a Markdown table (medians of interleaved rounds)
//   node bench.mjs --json     # the same figures as JSON
//   node bench.mjs --cpu      # time each round by the process's CPU time (process.cpuUsage: user +
//                             # system, every thread), not the wall clock: on a machine shared
//                             # with other work, time spent descheduled is not counted
//   BENCH_ROUNDS, BENCH_SYNC_N, BENCH_ASYNC_N override the round count and sizes.
//
// Not a test: numbers depend on the machine. Rows:
// - pick+record: `router.pick(nowMs)` + `router.record(ticket, 'success', nowMs)` with explicit
//   timestamps (the engine alone, no clock read).
// - pick+record (native clock): the same without timestamps, so each call reads the monotonic
//   clock natively, as router.call's pick and record do: the difference is two clock readings.
// - router.call: `await router.call(async noop)` — picks, reads the clock twice, awaits, records.
// - opossum fire(): `await breaker.fire()` with opossum's defaults (which arm a 10 s timeout timer
//   per call), and with `timeout: false`.
// - cockatiel execute(): `await policy.execute(noop)` for a circuit breaker with a consecutive
//   breaker, as cockatiel's README builds one; by default it reads no clock. The "timed" row adds
//   an `onSuccess` listener, which makes cockatiel time each call as router.call always does.
// - cockatiel execute() (timeout + SamplingBreaker): the same breaker behind cockatiel's timeout
//   policy (cooperative, 30 s): a deadline per call, as router.call always enforces; cockatiel
//   makes an AbortController and a timer for each call.
// - cockatiel execute() (SamplingBreaker): the breaker with a time window (a failure rate over the
//   last 30 s, at least 5 calls/s), the like-for-like peer of router.call (whose engine keeps a
//   windowed error rate too); it reads the clock on every call.
// - router.call (fn reads signal): the same, but the function reads its attempt's `signal`, which
//   makes the AbortController (armed at the attempt's deadline by one shared timer).
// - router.call, listener + OTel ...: with failover-core/otel: counters only (the 15 % bar), with
//   the histograms, with spans too.
// - floor of this design: what every `router.call` pays whatever its engine does, the engine left
//   out: two bare native crossings that each read the monotonic clock (the native `hotClock`, as
//   the request's start and its report do), the caller's own promise settled from one `then` on
//   `fn`'s promise (two closures), an attempt object. router.call − this row is the driver's and
//   the engine's own work; this row − `await noop()` is what the design costs before any of it.
// - await noop(): the floor every async row pays.
//
// Then the per-chunk overhead of `router.stream` over iterating the same chunks directly: one
// stream of BENCH_STREAM_CHUNKS (default 10,000) OpenAI-shaped chunks from an async generator,
// `for await` over `router.stream(() => gen())` against `for await` over `gen()`, interleaved,
// medians; (stream − direct) ÷ chunks is the overhead per chunk (the request's own start and end
// are spread over the chunks; a stream of few chunks pays them once: the "per stream" figure).

import { performance } from 'node:perf_hooks';
import CircuitBreaker from 'opossum';
import { circuitBreaker, ConsecutiveBreaker, SamplingBreaker, handleAll, timeout, TimeoutStrategy, wrap } from 'cockatiel';
import { Router } from 'failover-core';
import { createRequire } from 'node:module';
import path from 'node:path';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const SYNC_N = Number(process.env.BENCH_SYNC_N ?? 1_000_000);
const ASYNC_N = Number(process.env.BENCH_ASYNC_N ?? 50_000);

const noop = async () => 1;

/** What a round is timed by, in ms: the wall clock, or with --cpu the process's CPU time. */
const CPU = process.argv.includes('--cpu');
const clock = CPU
  ? () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    }
  : () => performance.now();

const router = new Router(['primary', 'secondary']);
const clockRouter = new Router(['primary', 'secondary']);
const callRouter = new Router(['primary', 'secondary']);
// The same with a listener for every event (issue 15's bar: at most 15 % more per call).
const listenedRouter = new Router(['primary', 'secondary']);
let heard = 0;
listenedRouter.on('event', () => {
  heard += 1;
});
// The same with the listener and failover-core/otel (SDK meter provider with a reader that is
// never collected during the run; spans through a SimpleSpanProcessor to an exporter that drops
// them): counters only (issue 15's bar: at most 15 % more than no listener), with histograms,
// with spans (quoted separately).
const { MeterProvider, MetricReader } = await import('@opentelemetry/sdk-metrics');
const { BasicTracerProvider, SimpleSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
const { instrument } = await import('failover-core/otel');
class IdleReader extends MetricReader {
  onForceFlush() { return Promise.resolve(); }
  onShutdown() { return Promise.resolve(); }
}
const meterProvider = new MeterProvider({ readers: [new IdleReader()] });
const tracerProvider = new BasicTracerProvider({
  spanProcessors: [new SimpleSpanProcessor({ export: (spans, done) => done({ code: 0 }), shutdown: async () => {} })],
});
const otelRouter = (histograms, spans) => {
  const r = new Router(['primary', 'secondary']);
  r.on('event', () => {
    heard += 1;
  });
  instrument(r, { meterProvider, tracerProvider, histograms, spans });
  return r;
};
const countedRouter = otelRouter(false, false);
const histogramRouter = otelRouter(true, false);
const spanRouter = otelRouter(true, true);
const opossumDefault = new CircuitBreaker(noop);
const opossumNoTimeout = new CircuitBreaker(noop, { timeout: false });
const cockatiel = circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) });
const cockatielTimed = circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) });
// The SamplingBreaker behind cockatiel's timeout policy: a deadline per attempt, as router.call
// always has (cooperative: the function gets the AbortSignal, as router.call's `signal`).
const cockatielDeadline = wrap(
  timeout(30_000, TimeoutStrategy.Cooperative),
  circuitBreaker(handleAll, {
    halfOpenAfter: 10_000,
    breaker: new SamplingBreaker({ threshold: 0.5, duration: 30_000, minimumRps: 5 }),
  }),
);
const cockatielSampling = circuitBreaker(handleAll, {
  halfOpenAfter: 10_000,
  breaker: new SamplingBreaker({ threshold: 0.5, duration: 30_000, minimumRps: 5 }),
});
let timedSink = 0;
cockatielTimed.onSuccess(({ duration }) => {
  timedSink += duration;
});

// The floor of this design (see the header): the package's private native module, as the tests
// reach it.
const require = createRequire(import.meta.url);
const native = require(path.join(path.dirname(require.resolve('failover-core/package.json')), 'native.js'));
const io = native.ioBuffer();
const { clockAt: CLOCK_AT } = native.requestLayout();
const { hotClock } = native;
let floorResolve;
let floorReject;
const floorCapture = (resolve, reject) => {
  floorResolve = resolve;
  floorReject = reject;
};
function floorCall(fn) {
  hotClock(); // the request's start: a crossing and a clock reading
  const at = io[CLOCK_AT] + 30_000;
  const promise = new Promise(floorCapture);
  const resolve = floorResolve;
  const reject = floorReject;
  const a = { provider: 'primary', attempt: 1, timeoutMs: 30_000, probe: false, at };
  fn(a).then(
    (v) => {
      hotClock(); // the report: a crossing and a clock reading
      if (io[CLOCK_AT] > a.at) reject(new Error('late'));
      else resolve(v);
    },
    (err) => reject(err),
  );
  return promise;
}

let now = 1;
const cases = {
  'pick+record': {
    n: SYNC_N,
    sync: true,
    run(n) {
      let s = 0;
      for (let i = 0; i < n; i++) {
        now += 1;
        const t = router.pick(now);
        s += router.record(t, 'success', now).length;
      }
      return s;
    },
  },
  'pick+record (native clock)': {
    n: SYNC_N,
    sync: true,
    run(n) {
      let s = 0;
      for (let i = 0; i < n; i++) {
        const t = clockRouter.pick();
        s += clockRouter.record(t, 'success').length;
      }
      return s;
    },
  },
  'router.call(async noop)': {
    n: ASYNC_N,
    async run(n) {
      let s = 0;
      for (let i = 0; i < n; i++) s += await callRouter.call(noop);
      return s;
    },
  },
  'router.call(async noop), listener on': {
    n: ASYNC_N,
    async run(n) {
      let s = 0;
      for (let i = 0; i < n; i++) s += await listenedRouter.call(noop);
      return s;
    },
  },
  'router.call(async noop), listener + OTel counters': {
    n: ASYNC_N,
    async run(n) {
      let s = 0;
      for (let i = 0; i < n; i++) s += await countedRouter.call(noop);
      return s;
    },
  },
  'router.call(async noop), listener + OTel counters + histograms': {
    n: ASYNC_N,
    async run(n) {
      let s = 0;
      for (let i = 0; i < n; i++) s += await histogramRouter.call(noop);
      return s;
    },
  },
  'router.call(async noop), listener + OTel metrics + spans': {
    n: ASYNC_N,
    async run(n) {
      let s = 0;
      for (let i = 0; i < n; i++) s += await spanRouter.call(noop);
      return s;
    },
  },
  'router.call (fn reads signal)': {
    n: ASYNC_N,
    async run(n) {
      let s = 0;
      const withSignal = async (a) => (a.signal ? 1 : 0);
      for (let i = 0; i < n; i++) s += await callRouter.call(withSignal);
      return s;
    },
  },
  'opossum fire() (defaults)': {
    n: ASYNC_N,
    async run(n) {
      let s = 0;
      for (let i = 0; i < n; i++) s += await opossumDefault.fire();
      return s;
    },
  },
  'opossum fire() (timeout: false)': {
    n: ASYNC_N,
    async run(n) {
      let s = 0;
      for (let i = 0; i < n; i++) s += await opossumNoTimeout.fire();
      return s;
    },
  },
  'cockatiel execute()': {
    n: ASYNC_N,
    async run(n) {
      let s = 0;
      for (let i = 0; i < n; i++) s += await cockatiel.execute(noop);
      return s;
    },
  },
  'cockatiel execute() (timed: onSuccess listener)': {
    n: ASYNC_N,
    async run(n) {
      let s = 0;
      for (let i = 0; i < n; i++) s += await cockatielTimed.execute(noop);
      return s;
    },
  },
  'cockatiel execute() (timeout + SamplingBreaker)': {
    n: ASYNC_N / 10,
    async run(n) {
      let s = 0;
      for (let i = 0; i < n; i++) s += await cockatielDeadline.execute(noop);
      return s;
    },
  },
  'cockatiel execute() (SamplingBreaker)': {
    n: ASYNC_N,
    async run(n) {
      let s = 0;
      for (let i = 0; i < n; i++) s += await cockatielSampling.execute(noop);
      return s;
    },
  },
  'floor of this design (two clock-reading crossings, own promise; no engine)': {
    n: ASYNC_N,
    async run(n) {
      let s = 0;
      for (let i = 0; i < n; i++) s += await floorCall(noop);
      return s;
    },
  },
  'await noop() (floor)': {
    n: ASYNC_N,
    async run(n) {
      let s = 0;
      for (let i = 0; i < n; i++) s += await noop();
      return s;
    },
  },
};

const DESIGN = 'floor of this design (two clock-reading crossings, own promise; no engine)';
// BENCH_ONLY=text keeps the rows whose name contains it (and router.call and the floors), e.g.
// BENCH_ONLY=listener for issue 15's bar; the comparisons with the peers are then not printed.
const ONLY = process.env.BENCH_ONLY;
if (ONLY) {
  for (const name of Object.keys(cases)) {
    if (!name.includes(ONLY) && name !== 'router.call(async noop)' && name !== DESIGN && name !== 'await noop() (floor)') delete cases[name];
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const samples = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
let sink = 0;
// Warm-up: let every path be optimised before measuring.
for (const c of Object.values(cases)) sink += await c.run(Math.min(c.n, 20_000));
// Interleaved rounds, so drift (other work on the machine, GC) hits every row alike.
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, c] of Object.entries(cases)) {
    const t0 = clock();
    sink += await c.run(c.n);
    samples[name].push(((clock() - t0) * 1e6) / c.n);
  }
}
if (sink === 0 || timedSink < 0) console.error('unreachable');

const med = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
const floor = med['await noop() (floor)'];
const call = med['router.call(async noop)'];
const rows = Object.keys(cases).map((name) => ({
  name,
  median_ns: Math.round(med[name]),
  min_ns: Math.round(Math.min(...samples[name])),
  over_floor_ns: cases[name].sync ? null : Math.round(med[name] - floor),
  vs_call: cases[name].sync ? null : med[name] / call,
}));

// BENCH_SAMPLES=1 prints every round's figure to stderr, to see the spread behind the medians.
if (process.env.BENCH_SAMPLES) {
  console.error(JSON.stringify(Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.map(Math.round)]))));
}
if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ node: process.version, rounds: ROUNDS, clock: CPU ? 'cpu' : 'wall', rows }, null, 2));
} else {
  console.log(`node ${process.version}, ${ROUNDS} interleaved rounds (${SYNC_N} sync / ${ASYNC_N} async calls each), medians of ${CPU ? 'CPU' : 'wall-clock'} time\n`);
  console.log('| workload | median ns/call | min ns/call | above `await noop()` | time ÷ router.call |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) {
    const over = r.over_floor_ns === null ? '—' : String(r.over_floor_ns);
    const ratio = r.vs_call === null ? '—' : `${r.vs_call.toFixed(2)}×`;
    console.log(`| ${r.name} | ${r.median_ns} | ${r.min_ns} | ${over} | ${ratio} |`);
  }
  if (!ONLY) printPeers();
  else console.log('');
  const listened = med['router.call(async noop), listener on'] / call;
  console.log(`router.call with a listener vs without: ${listened.toFixed(3)}× (bar ≤ 1.15: ${listened <= 1.15 ? 'yes' : 'NO'}; events heard ${heard})`);
  const counted = med['router.call(async noop), listener + OTel counters'] / call;
  console.log(`router.call with a listener and the OTel counters vs neither: ${counted.toFixed(3)}× (bar ≤ 1.15: ${counted <= 1.15 ? 'yes' : 'NO'})`);
  for (const name of ['router.call(async noop), listener + OTel counters + histograms', 'router.call(async noop), listener + OTel metrics + spans']) {
    if (med[name] === undefined) continue;
    console.log(`  ${name.slice('router.call(async noop), '.length)}: ${(med[name] / call).toFixed(2)}× (+${Math.round(med[name] - call)} ns per call; not under the bar)`);
  }
}

function printPeers() {
  const pr = med['pick+record'];
  const op = Math.min(med['opossum fire() (defaults)'], med['opossum fire() (timeout: false)']);
  const ck = med['cockatiel execute()'];
  const ckt = med['cockatiel execute() (timed: onSuccess listener)'];
  const cks = med['cockatiel execute() (SamplingBreaker)'];
  console.log('');
  console.log(`pick+record ≤ 150 ns: ${pr <= 150 ? 'yes' : 'NO'} (${pr.toFixed(1)} ns)`);
  console.log(`router.call faster than opossum (its faster configuration): ${call < op ? 'yes' : 'NO'} (${(op / call).toFixed(2)}× as fast)`);
  console.log(`router.call no slower than cockatiel's SamplingBreaker: ${call <= cks ? 'yes' : 'NO'} (${(cks / call).toFixed(2)}× as fast)`);
  const ckd = med['cockatiel execute() (timeout + SamplingBreaker)'];
  if (ckd !== undefined) console.log(`router.call against cockatiel with a deadline per call (timeout + SamplingBreaker): ${(ckd / call).toFixed(2)}× as fast`);
  console.log(`router.call no slower than cockatiel (ConsecutiveBreaker): ${call <= ck ? 'yes' : 'NO'} (${(ck / call).toFixed(2)}× as fast)`);
  console.log(`router.call no slower than cockatiel timing its calls: ${call <= ckt ? 'yes' : 'NO'} (${(ckt / call).toFixed(2)}× as fast)`);
}

// -- router.stream: per-chunk overhead over iterating the same chunks directly --------------

if (ONLY) process.exit(0);

const CHUNKS = Number(process.env.BENCH_STREAM_CHUNKS ?? 10_000);
const streamRouter = new Router(['primary', 'secondary']);
const CHUNK = { choices: [{ index: 0, delta: { content: 'x' }, finish_reason: null }] };
const LAST = { choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] };
async function* gen(n) {
  for (let i = 0; i < n - 1; i++) yield CHUNK;
  yield LAST;
}
async function direct(n) {
  let k = 0;
  for await (const c of gen(n)) k += c.choices.length;
  return k;
}
async function viaRouter(n) {
  let k = 0;
  for await (const c of streamRouter.stream(() => gen(n))) k += c.choices.length;
  return k;
}
const streamCases = {
  direct: () => direct(CHUNKS),
  'router.stream': () => viaRouter(CHUNKS),
  // Short streams (3 chunks), 1,000 of them: the fixed cost of a streamed request.
  'direct (3 chunks)': async () => {
    let k = 0;
    for (let i = 0; i < 1_000; i++) k += await direct(3);
    return k;
  },
  'router.stream (3 chunks)': async () => {
    let k = 0;
    for (let i = 0; i < 1_000; i++) k += await viaRouter(3);
    return k;
  },
};
const streamSamples = Object.fromEntries(Object.keys(streamCases).map((k) => [k, []]));
for (const f of Object.values(streamCases)) sink += await f();
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, f] of Object.entries(streamCases)) {
    const t0 = clock();
    sink += await f();
    streamSamples[name].push((clock() - t0) * 1e6);
  }
}
const sm = Object.fromEntries(Object.entries(streamSamples).map(([k, v]) => [k, median(v)]));
const stream = {
  chunks: CHUNKS,
  direct_ns_per_chunk: sm.direct / CHUNKS,
  stream_ns_per_chunk: sm['router.stream'] / CHUNKS,
  overhead_ns_per_chunk: (sm['router.stream'] - sm.direct) / CHUNKS,
  overhead_ns_per_stream_of_3: (sm['router.stream (3 chunks)'] - sm['direct (3 chunks)']) / 1_000,
};
if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ stream }, null, 2));
} else {
  console.log('');
  console.log(`router.stream over ${CHUNKS} chunks, medians of ${ROUNDS} rounds:`);
  console.log(`  direct for await: ${stream.direct_ns_per_chunk.toFixed(0)} ns/chunk; through router.stream: ${stream.stream_ns_per_chunk.toFixed(0)} ns/chunk`);
  console.log(`  overhead: ${stream.overhead_ns_per_chunk.toFixed(0)} ns per chunk; ${(stream.overhead_ns_per_stream_of_3 / 1000).toFixed(1)} µs per 3-chunk stream (the request's start and end)`);
}
