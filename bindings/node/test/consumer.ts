// A small consumer of the public API, type-checked with `tsc --noEmit` (CommonJS resolution:
// `require` condition, index.d.ts). It is not run: it proves the types are usable.
import {
  type Attempt,
  type GiveUpReason,
  AllProvidersFailedError,
  ConfigError,
  StreamBrokenError,
  Router,
  UnavailableError,
  classify,
  classifyResponse,
  monotonicNowMs,
  type Classification,
  type FailoverEvent,
  type OutcomeKind,
  type Policy,
  type PolicyInForce,
  type ProviderView,
  type Recorded,
  type Ticket,
} from 'failover-core';

const policy: Policy = {
  consecutive_failures: 3,
  error_rate_threshold: null,
  open_jitter: 0.1,
  seed: 42n,
  probe_mode: 'health_checks',
  ramp: [
    { share: 0.1, dwell_ms: 60_000 },
    { share: 1, dwell_ms: 0 },
  ],
};

function build(): Router {
  try {
    return new Router(['openai', 'anthropic'], policy, { clock: monotonicNowMs });
  } catch (e) {
    if (e instanceof ConfigError) console.error(e.code, e.message);
    throw e;
  }
}

const router = build();

// The run loop: pick, call, record, drain events, sleep until the next deadline.
function once(nowMs: number): Recorded {
  let ticket: Ticket;
  try {
    ticket = router.pick({ nowMs, key: 'user-1', tried: [] });
  } catch (e) {
    if (e instanceof UnavailableError) return 'stale';
    throw e;
  }
  const kind: OutcomeKind = ticket.provider === 'openai' ? 'success' : 'timeout';
  const recorded = router.record(ticket, { outcome: kind, latency_ms: 850 }, nowMs + 850);
  for (let e: FailoverEvent | null = router.pollEvent(); e !== null; e = router.pollEvent()) {
    if (e.kind === 'opened') console.log(e.provider, e.trigger, e.until_ms, e.outcome);
    else if (e.kind === 'ramp_stage') console.log(e.stage, e.share);
  }
  const deadline: number | null = router.pollTimeout();
  if (deadline !== null) router.handleTimeout(deadline);
  return recorded;
}
once(1_000);

async function complete(prompt: string): Promise<string> {
  return router.call(
    async ({ provider, signal, attempt, timeoutMs, probe }: Attempt) => {
      const res = await fetch(`https://${provider}.invalid/v1`, { method: 'POST', body: prompt, signal });
      if (!res.ok) throw Object.assign(new Error(`HTTP ${res.status}`), { status: res.status, headers: res.headers });
      return `${attempt} ${probe} ${timeoutMs} ${await res.text()}`;
    },
    { maxAttempts: 2, requestTimeoutMs: 30_000, maxWaitMs: 1_000, key: 'user-1' },
  );
}

complete('hi').catch((e: unknown) => {
  if (e instanceof AllProvidersFailedError) {
    const hint: number | null = e.retry_after_ms;
    const reason: GiveUpReason | null = e.reason;
    console.log(hint, reason, e.errors.length, e.attempts.map((a) => [a.outcome, a.latency_ms, a.error]));
  }
});
interface Chunk {
  choices: { delta: { content?: string }; finish_reason: string | null }[];
}
async function* chunksFrom(provider: string, signal: AbortSignal, timeoutMs: number): AsyncGenerator<Chunk> {
  signal.throwIfAborted();
  yield { choices: [{ delta: { content: `${provider} ${timeoutMs}` }, finish_reason: 'stop' }] };
}
async function streamed(): Promise<string> {
  let text = '';
  try {
    for await (const c of router.stream(({ provider, signal, timeoutMs }) => chunksFrom(provider, signal, timeoutMs), { maxAttempts: 2 })) {
      const chunk: Chunk = c;
      text += chunk.choices[0]?.delta.content ?? '';
    }
  } catch (e) {
    if (e instanceof StreamBrokenError) {
      const outcome: OutcomeKind = e.outcome;
      console.log(e.provider, outcome, e.chunks.length, e.code);
    }
  }
  return text;
}
void streamed();
// @ts-expect-error: the chunk test takes the stream's chunk type
router.stream(() => chunksFrom('a', new AbortController().signal, 1), { isContent: (c: number) => c > 0 });

// @ts-expect-error: attempt deadlines come from the policy, not from call's options
void router.call(async () => 1, { timeoutMs: 5 });

const c: Classification = classifyResponse(new Response(null, { status: 429 }));
const c2: Classification = classify(new Error('x'));
const views: ProviderView[] = router.views();
const share: number | undefined = views[0]?.share;
console.log(c.outcome, c2.retry_after_ms, share, router.view('openai')?.window.failures);

const loop = router.startHealthChecks(async (provider, { signal }) => fetch(`https://${provider}.invalid/health`, { signal }), {
  maxSleepMs: 500,
  onEvent: (e) => console.log(e.kind),
});
void loop.stop();

// @ts-expect-error: outcome kinds are checked
router.record(router.pick(0), 'fine');
// @ts-expect-error: unknown policy fields are rejected by the type too
new Router(['a'], { opne_jitter: 0 });

// The policy read back is typed field by field, and builds the same policy.
const inForce: PolicyInForce = router.policy();
const windowMs: number = inForce.window_ms;
const errorRate: number | null = inForce.error_rate_threshold;
const probeMode: 'requests' | 'health_checks' = inForce.probe_mode;
const firstShare: number | undefined = inForce.ramp[0]?.share;
console.log(windowMs, errorRate, probeMode, firstShare);
new Router(['a'], router.policy());
// @ts-expect-error: an optional trigger may be null
const rate: number = inForce.error_rate_threshold;
// @ts-expect-error: no such field
void inForce.windows_ms;
void rate;
