'use strict';
// Replays fixtures/scenarios/*.json through the public JS API and checks every expectation with
// the semantics of the Rust reference runner (crates/failover-scenario/src/lib.rs): the same
// actions, the same JSON shapes, the same matching rule. The format is in fixtures/README.md.
// fixtures/requests/*.json add request steps, which drive the native request engine
// (`NativeRequest`) against the router's native side as crates/failover-scenario/src/requests.rs
// does.
//
// As a script: `node test/scenario-runner.js FILE...` prints one compact JSON line per step, the
// lines `cargo run -p failover-scenario --example observe -- FILE` prints, for diffing.

const fs = require('node:fs');
const path = require('node:path');
const pkg = require('./package.js');
const fc = require('failover-core');
// The native module's `classify(facts)`: the core's one classification table, and `headroom`: its
// reading of the rate-limit headers (index.js exposes neither yet).
const native = pkg.load('native.js');
// The NativeRouter behind a public Router, which a NativeRequest is driven against (internal).
const { nativeRouter } = pkg.load('lib/router.js');
const { kindOf } = pkg.load('lib/stream.js');

/** The repository's scenario directory: FAILOVER_SCENARIO_DIR (test.sh passes it when the suite
 * runs against the installed package, outside the repository), else found from this file. */
const SCENARIO_DIR =
  process.env.FAILOVER_SCENARIO_DIR || path.resolve(__dirname, '..', '..', '..', 'fixtures', 'scenarios');
/** The repository's request scenario directory (FAILOVER_REQUEST_DIR overrides it). */
const REQUEST_DIR =
  process.env.FAILOVER_REQUEST_DIR || path.resolve(__dirname, '..', '..', '..', 'fixtures', 'requests');

// ---------------------------------------------------------------------------------------------
// JSON with exact integers: an integer literal beyond 2^53 − 1 becomes a BigInt, so the runner
// can tell a timestamp JavaScript cannot represent from one it can.

function parseJson(text) {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const fail = (msg) => {
    throw new SyntaxError(`${msg} at offset ${i}`);
  };
  const value = () => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const o = {};
      ws();
      if (text[i] === '}') return i++, o;
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a key');
        const k = string();
        ws();
        if (text[i++] !== ':') fail('expected :');
        o[k] = value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return i++, o;
        else fail('expected , or }');
      }
    }
    if (c === '[') {
      i++;
      const a = [];
      ws();
      if (text[i] === ']') return i++, a;
      for (;;) {
        a.push(value());
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return i++, a;
        else fail('expected , or ]');
      }
    }
    if (c === '"') return string();
    const lit = /^(-?)(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (lit) {
      i += lit[0].length;
      if (lit[3] === undefined && lit[4] === undefined) {
        const n = Number(lit[0]);
        return Number.isSafeInteger(n) ? n : BigInt(lit[0]);
      }
      return Number(lit[0]);
    }
    for (const [w, v] of [['true', true], ['false', false], ['null', null]]) {
      if (text.startsWith(w, i)) return (i += w.length), v;
    }
    return fail('unexpected character');
  };
  const string = () => {
    const m = /^"(?:[^"\\\u0000-\u001f]|\\.)*"/.exec(text.slice(i));
    if (!m) fail('bad string');
    i += m[0].length;
    return JSON.parse(m[0]);
  };
  const v = value();
  ws();
  if (i !== text.length) fail('trailing characters');
  return v;
}

/** Paths of BigInt values (integers JavaScript numbers cannot hold exactly), outside `policy`. */
function bigIntegers(doc) {
  const found = [];
  const walk = (v, p) => {
    if (typeof v === 'bigint') found.push(`${p} = ${v}`);
    else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${p}[${i}]`));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, `${p}.${k}`);
  };
  for (const [k, v] of Object.entries(doc)) if (k !== 'policy') walk(v, k);
  return found;
}

// ---------------------------------------------------------------------------------------------
// Matching and output, as the Rust runner does them.

/** `expected` matches `observed`: objects by expected keys (recursively), arrays element-wise
 * with equal lengths, numbers by value, the rest exactly. */
function matches(expected, observed) {
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    if (observed === null || typeof observed !== 'object' || Array.isArray(observed)) return false;
    return Object.keys(expected).every((k) => Object.hasOwn(observed, k) && matches(expected[k], observed[k]));
  }
  if (Array.isArray(expected)) {
    return Array.isArray(observed) && expected.length === observed.length && expected.every((e, i) => matches(e, observed[i]));
  }
  if (typeof expected === 'bigint' || typeof observed === 'bigint') {
    return (typeof expected === 'bigint' || typeof expected === 'number') && (typeof observed === 'bigint' || typeof observed === 'number') && BigInt(expected) === BigInt(observed);
  }
  return expected === observed;
}

/** Keys whose values the Rust runner produces as f64 (serde prints them with a decimal point). */
const FLOAT_KEYS = new Set(['share']);

/** serde_json's compact output: object keys sorted (its map is a BTreeMap), f64 with a point. */
function compact(v, key) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number') {
    if (FLOAT_KEYS.has(key) && Number.isInteger(v)) return v.toFixed(1);
    return JSON.stringify(v);
  }
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return `[${v.map((x) => compact(x, key)).join(',')}]`;
  if (typeof v === 'object') {
    const ks = Object.keys(v).sort();
    return `{${ks.map((k) => `${JSON.stringify(k)}:${compact(v[k], k)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

// ---------------------------------------------------------------------------------------------
// Replay.

class ScenarioFailure extends Error {
  constructor(file, step, message) {
    super(step === null ? `${file}: ${message}` : `${file}: step ${step}: ${message}`);
    this.file = file;
    this.step = step;
  }
}

function load(file) {
  return { file, doc: parseJson(fs.readFileSync(file, 'utf8')) };
}

function loadDir(dir = SCENARIO_DIR) {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => load(path.join(dir, f)));
}

/** Why a scenario cannot run through the JS API, or null. */
function skipReason(s) {
  const big = bigIntegers(s.doc);
  if (big.length === 0) return null;
  return (
    'uses integers beyond 2^53 - 1, which JavaScript numbers cannot represent exactly, so the ' +
    `Node API rejects them as timestamps (${big.slice(0, 3).join(', ')}${big.length > 3 ? ', …' : ''})`
  );
}

/** Builds the router: `{router}` or `{error}` (the ConfigError). Other errors propagate. */
function build(s) {
  const providers = s.doc.providers;
  if (!Array.isArray(providers)) throw new ScenarioFailure(s.file, null, '`providers` must be a list of names');
  if (!providers.every((n) => typeof n === 'string')) throw new ScenarioFailure(s.file, null, 'provider names must be strings');
  try {
    return { router: new fc.Router(providers, s.doc.policy ?? undefined) };
  } catch (e) {
    if (e instanceof fc.ConfigError) return { error: e };
    throw e;
  }
}

function outcomeOf(obj) {
  const kind = obj?.outcome;
  if (typeof kind !== 'string') throw new Error('`outcome` must be an outcome kind');
  if (!fc.OUTCOME_KINDS.includes(kind)) throw new Error(`unknown outcome \`${kind}\``);
  const o = { outcome: kind, latency_ms: 0, retry_after_ms: null };
  if (obj.latency_ms !== undefined) {
    if (!Number.isInteger(obj.latency_ms) || obj.latency_ms < 0 || obj.latency_ms > 4294967295) {
      throw new Error('`latency_ms` must be an integer 0–4294967295');
    }
    o.latency_ms = obj.latency_ms;
  }
  if (obj.retry_after_ms !== undefined && obj.retry_after_ms !== null) {
    if (!Number.isInteger(obj.retry_after_ms) || obj.retry_after_ms < 0) {
      throw new Error('`retry_after_ms` must be a non-negative integer');
    }
    o.retry_after_ms = obj.retry_after_ms;
  }
  return o;
}

function ticketJson(t) {
  return { provider: t.provider, kind: t.kind, degraded: t.degraded, retry_after_ms: t.retry_after_ms };
}

function providerName(r, name) {
  if (typeof name !== 'string') throw new Error('provider must be a name');
  if (!r.providers.includes(name)) throw new Error(`unknown provider \`${name}\``);
  return name;
}

const REQUEST_ACTIONS = ['next', 'report', 'first_token', 'chunk', 'end', 'cancel'];

function optU64(obj, key) {
  const v = obj[key];
  if (v === undefined || v === null) return null;
  if (!Number.isInteger(v) || v < 0) throw new Error(`\`${key}\` must be a non-negative integer`);
  return v;
}

/** The Rust runner's request steps (requests.rs): `begin` starts a NativeRequest under the name in
 * `as`; the others drive it. The shapes are the native module's (built from the core's field
 * list), wrapped as the Rust runner wraps them. */
function requestStep(r, requests, step, at) {
  const n = nativeRouter(r);
  if (step.begin !== undefined) {
    const b = step.begin !== null && typeof step.begin === 'object' && !Array.isArray(step.begin) ? step.begin : {};
    const name = step.as;
    if (typeof name !== 'string') throw new Error("`begin` needs `as`: the request's name");
    const key = b.key ?? null;
    if (key !== null && typeof key !== 'string') throw new Error('`key` must be a string');
    const maxAttempts = optU64(b, 'max_attempts');
    if (maxAttempts !== null && maxAttempts > 255) throw new Error('`max_attempts` must be 0–255');
    const options = {
      max_attempts: maxAttempts,
      deadline_ms: optU64(b, 'deadline_ms'),
      max_wait_ms: optU64(b, 'max_wait_ms'),
      stream: typeof b.stream === 'boolean' ? b.stream : false,
      key,
    };
    const req = new native.NativeRequest(n, options, at);
    requests.set(name, req);
    return { deadline_ms: req.deadlineMs() };
  }
  const action = REQUEST_ACTIONS.find((a) => step[a] !== undefined);
  const v = step[action];
  const name = typeof v === 'string' ? v : v !== null && typeof v === 'object' ? v.request : undefined;
  if (typeof name !== 'string') throw new Error(`\`${action}\` needs a request name`);
  const req = requests.get(name);
  if (req === undefined) throw new Error(`no request named \`${name}\``);
  if (action === 'next') return req.poll(n, at);
  const [, before] = req.lastReport();
  try {
    if (action === 'report') {
      const o = outcomeOf(v);
      req.handleOutcome(n, o.outcome, o.retry_after_ms, at);
    } else if (action === 'first_token') {
      req.handleFirstToken(at);
    } else if (action === 'chunk') {
      req.handleChunk(at);
    } else if (action === 'end') {
      if (typeof v?.complete !== 'boolean') throw new Error('`end` needs `complete`: true or false');
      req.handleEnd(n, v.complete, at);
    } else {
      req.handleCancel(n, at);
    }
  } catch (e) {
    if (e instanceof Error && e.name === 'RequestError') return { error: e.code };
    throw e;
  }
  const [report, after] = req.lastReport();
  return { recorded: report !== null && after !== before ? report : null };
}

function apply(r, tickets, requests, step, at) {
  if (step.begin !== undefined || REQUEST_ACTIONS.some((a) => step[a] !== undefined)) {
    return requestStep(r, requests, step, at);
  }
  if (step.pick !== undefined) {
    const pick = step.pick ?? {};
    const opts = { nowMs: at };
    if (pick.key !== undefined) {
      if (typeof pick.key !== 'string') throw new Error('`key` must be a string');
      opts.key = pick.key;
    }
    if (pick.tried !== undefined) {
      if (!Array.isArray(pick.tried)) throw new Error('`tried` must be a list');
      opts.tried = pick.tried.map((n) => providerName(r, n));
    }
    try {
      const t = r.pick(opts);
      if (typeof step.as === 'string') tickets.set(step.as, t);
      return ticketJson(t);
    } catch (e) {
      if (e instanceof fc.UnavailableError) return { unavailable: true, retry_after_ms: e.retry_after_ms };
      throw e;
    }
  }
  if (step.record !== undefined) {
    const name = step.record?.ticket;
    if (typeof name !== 'string') throw new Error('`record` needs a `ticket` name');
    const t = tickets.get(name);
    if (t === undefined) throw new Error(`no ticket named \`${name}\``);
    return r.record(t, outcomeOf(step.record), at);
  }
  if (step.policy !== undefined) return r.policy();
  for (const op of ['isolate', 'release', 'reset']) {
    if (step[op] !== undefined) return r[op](providerName(r, step[op]), at);
  }
  if (step.observe !== undefined) {
    const name = providerName(r, step.observe?.provider ?? null);
    return r.observe(name, outcomeOf(step.observe), at);
  }
  if (step.http !== undefined) return classifyStep(step.http);
  if (step.stream_chunk !== undefined) {
    // The raw chunk through router.stream's own reading (lib/stream.js kindOf).
    const k = kindOf(step.stream_chunk);
    if (typeof k === 'string') return { kind: 'error', outcome: k };
    return { kind: ['other', 'content', 'terminal', 'last_content'][k], outcome: null };
  }
  if (step.headers !== undefined) return headersStep(step.headers);
  if (step.headroom !== undefined) {
    const h = step.headroom;
    if (h === null || typeof h !== 'object' || Array.isArray(h)) throw new Error('`headroom` must be an object');
    const name = providerName(r, h.provider ?? null);
    const { pairs, now } = headerPairs(Object.fromEntries(Object.entries(h).filter(([k]) => k !== 'provider')), 'headroom');
    return r.observeHeadroom(name, pairs, at, now);
  }
  if (step.tick !== undefined) {
    r.handleTimeout(at);
    return null;
  }
  if (step.poll !== undefined) {
    const names = Array.isArray(step.as) ? step.as.filter((n) => typeof n === 'string') : [];
    const actions = [];
    for (let t = r.pollAction(at); t !== null; t = r.pollAction(at)) {
      if (actions.length < names.length) tickets.set(names[actions.length], t);
      actions.push({ provider: t.provider, kind: t.kind });
    }
    return actions;
  }
  if (step.view !== undefined) {
    return r.view(providerName(r, step.view));
  }
  if (step.traffic !== undefined) return traffic(r, step.traffic ?? {}, at);
  throw new Error(
    'the step has no action (pick, record, observe, isolate, release, reset, policy, http, stream_chunk, headers, headroom, tick, poll, view, traffic, begin, next, report, first_token, chunk, end, cancel)',
  );
}

const HTTP_TEXT = ['error_code', 'error_type', 'message', 'transport', 'retry_after', 'retry_after_ms', 'x_ms_retry_after_ms'];

/** The Rust runner's `http` step: the facts (every field optional) through the native `classify`. */
function classifyStep(h) {
  if (h === null || typeof h !== 'object' || Array.isArray(h)) throw new Error('`http` must be an object');
  const unknown = Object.keys(h).filter((k) => k !== 'status' && k !== 'now_unix_ms' && !HTTP_TEXT.includes(k)).sort();
  if (unknown.length > 0) throw new Error(`unknown \`http\` field \`${unknown[0]}\``);
  const facts = {};
  if (h.status !== undefined && h.status !== null) {
    if (!Number.isInteger(h.status) || h.status < 0 || h.status > 65535) throw new Error('`status` must be an integer 0–65535');
    facts.status = h.status;
  }
  if (h.now_unix_ms !== undefined && h.now_unix_ms !== null) {
    if (!Number.isSafeInteger(h.now_unix_ms) || h.now_unix_ms < 0) throw new Error('`now_unix_ms` must be an integer ≥ 0');
    facts.now_unix_ms = h.now_unix_ms;
  }
  for (const name of HTTP_TEXT) {
    const v = h[name];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') throw new Error(`\`${name}\` must be a string`);
    facts[name] = v;
  }
  if (facts.transport !== undefined && !native.transports().includes(facts.transport)) {
    throw new Error(`unknown transport \`${facts.transport}\``);
  }
  return native.classify(facts);
}

/** The Rust runner's `headers` step: the `pairs` through the native `headroom` (the core's `Headroom`). */
function headersStep(h) {
  const { pairs, now } = headerPairs(h, 'headers');
  return native.headroom(pairs, now);
}

/** The `pairs` and `now_unix_ms` of a `headers` or `headroom` step, checked as the Rust runner does. */
function headerPairs(h, stepName) {
  if (h === null || typeof h !== 'object' || Array.isArray(h)) throw new Error(`\`${stepName}\` must be an object`);
  const unknown = Object.keys(h).filter((k) => k !== 'pairs' && k !== 'now_unix_ms').sort();
  if (unknown.length > 0) throw new Error(`unknown \`${stepName}\` field \`${unknown[0]}\``);
  let now;
  if (h.now_unix_ms !== undefined && h.now_unix_ms !== null) {
    if (!Number.isSafeInteger(h.now_unix_ms) || h.now_unix_ms < 0) throw new Error('`now_unix_ms` must be an integer ≥ 0');
    now = h.now_unix_ms;
  }
  if (!Array.isArray(h.pairs)) throw new Error('`pairs` must be a list of [name, value]');
  for (const p of h.pairs) {
    if (!Array.isArray(p) || p.length !== 2 || !p.every((x) => typeof x === 'string')) {
      throw new Error('each of `pairs` must be [name, value], two strings');
    }
  }
  return { pairs: h.pairs, now };
}

function traffic(r, tr, from) {
  const until = tr.until;
  if (!Number.isInteger(until) || until < 0) throw new Error('`traffic.until` must be a timestamp');
  const every = tr.every_ms;
  if (!Number.isInteger(every) || every <= 0) throw new Error('`traffic.every_ms` must be a positive integer');
  if (tr.outcomes === null || typeof tr.outcomes !== 'object' || Array.isArray(tr.outcomes)) {
    throw new Error('`traffic.outcomes` must map provider names (or "*") to outcomes');
  }
  const byProvider = new Map();
  let fallback = null;
  for (const [name, o] of Object.entries(tr.outcomes)) {
    const out = outcomeOf(o);
    if (name === '*') fallback = out;
    else byProvider.set(providerName(r, name), out);
  }
  const key = typeof tr.key === 'string' ? tr.key : undefined;
  const picks = Object.fromEntries(r.providers.map((n) => [n, 0]));
  let probes = 0;
  let degraded = 0;
  let unavailable = 0;
  for (let t = from; t < until; t += every) {
    let ticket;
    try {
      ticket = r.pick({ nowMs: t, key });
    } catch (e) {
      if (e instanceof fc.UnavailableError) {
        unavailable += 1;
        continue;
      }
      throw e;
    }
    picks[ticket.provider] += 1;
    probes += ticket.isProbe ? 1 : 0;
    degraded += ticket.degraded ? 1 : 0;
    const o = byProvider.get(ticket.provider) ?? fallback;
    if (o === null) throw new Error(`no outcome for provider \`${ticket.provider}\``);
    r.record(ticket, o, t);
  }
  return { picks, probes, degraded, unavailable };
}

/** Replays the steps and returns what each observed: `{step, at, result, events, next_deadline}`. */
function observe(s) {
  const built = build(s);
  if (built.error) {
    return [{ step: 0, at: 0, result: { error: built.error.code, message: built.error.message }, events: [], next_deadline: null }];
  }
  const r = built.router;
  const steps = s.doc.steps;
  if (!Array.isArray(steps)) throw new ScenarioFailure(s.file, null, '`steps` must be a list');
  const tickets = new Map();
  const requests = new Map();
  return steps.map((step, i) => {
    const at = step?.at;
    if (!Number.isInteger(at) || at < 0) throw new ScenarioFailure(s.file, i, '`at` must be a non-negative integer');
    let result;
    try {
      result = apply(r, tickets, requests, step, at);
    } catch (e) {
      throw new ScenarioFailure(s.file, i, e.message);
    }
    // The scenario shape; the core's `description` (the same words in every language, tested in
    // Rust) is checked to be there and left out.
    const events = r.drainEvents().map(({ description, ...e }) => {
      if (typeof description !== 'string' || description === '') {
        throw new ScenarioFailure(s.file, i, `event without a description: ${JSON.stringify(e)}`);
      }
      return e;
    });
    const violation = r.invariantViolation();
    if (violation !== null) throw new ScenarioFailure(s.file, i, `engine invariant broken: ${violation}`);
    return { step: i, at, result, events, next_deadline: r.pollTimeout() };
  });
}

/** Replays a scenario and checks every expectation; throws a ScenarioFailure naming the step. */
function check(s) {
  const dump = process.env.FAILOVER_SCENARIO_DUMP === '1';
  if (s.doc.expect_error !== undefined) {
    const built = build(s);
    if (dump && built.error) for (const res of observe(s)) process.stdout.write(`${line(res)}\n`);
    if (!built.error) throw new ScenarioFailure(s.file, null, `expected configuration error ${compact(s.doc.expect_error)}, got a router`);
    if (built.error.code !== s.doc.expect_error) {
      throw new ScenarioFailure(s.file, null, `expected configuration error ${compact(s.doc.expect_error)}, got \`${built.error.code}\` (${built.error.message})`);
    }
    return;
  }
  const built = build(s);
  if (built.error) throw new ScenarioFailure(s.file, null, `unexpected configuration error \`${built.error.code}\`: ${built.error.message}`);
  const observed = observe(s);
  observed.forEach((res, i) => {
    const step = s.doc.steps[i];
    if (dump) process.stdout.write(`${line(res)}\n`);
    if (step.expect !== undefined && !matches(step.expect, res.result)) {
      throw new ScenarioFailure(s.file, i, `expected ${compact(step.expect)}\n   observed ${compact(res.result)}`);
    }
    if (step.events !== undefined && !matches(step.events, res.events)) {
      throw new ScenarioFailure(s.file, i, `expected events ${compact(step.events)}\n   observed events ${compact(res.events)}`);
    }
    if (step.next_deadline !== undefined && !matches(step.next_deadline, res.next_deadline)) {
      throw new ScenarioFailure(s.file, i, `expected next_deadline ${compact(step.next_deadline)}, observed ${compact(res.next_deadline)}`);
    }
  });
}

/** The compact JSON line of one step (the Rust runner's `StepResult::to_json`). */
function line(res) {
  return compact({ step: res.step, at: res.at, result: res.result, events: res.events, next_deadline: res.next_deadline });
}

module.exports = { SCENARIO_DIR, REQUEST_DIR, parseJson, matches, compact, load, loadDir, skipReason, observe, check, line, ScenarioFailure };

if (require.main === module) {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    process.stderr.write('usage: node test/scenario-runner.js SCENARIO.json...\n');
    process.exit(2);
  }
  for (const f of files) {
    const s = load(f);
    const skip = skipReason(s);
    if (skip) {
      process.stderr.write(`${f}: skipped: ${skip}\n`);
      continue;
    }
    for (const res of observe(s)) process.stdout.write(`${line(res)}\n`);
  }
}
