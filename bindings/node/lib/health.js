'use strict';
// The active health-check loop of `router.startHealthChecks`.

const native = require('../native.js');
const { typeError, checkPositive, checkFunction } = require('./errors.js');
const { OUTCOME_CODE, elapsed } = require('./io.js');
const { classifyError, classifyResponse, isResponseLike, kind } = require('./classify.js');

/** What a resolved check means: an outcome kind, a Response, `{outcome, …}`, else success. */
function checkResult(r) {
  if (typeof r === 'string' && OUTCOME_CODE.has(r)) return kind(r);
  if (isResponseLike(r)) return classifyResponse(r);
  if (r && typeof r === 'object' && OUTCOME_CODE.has(r.outcome)) {
    return { outcome: r.outcome, retry_after_ms: r.retry_after_ms ?? null, latency_ms: r.latency_ms };
  }
  return kind('success');
}

/** `router.startHealthChecks(check, options)` (see router.js); `clock` is the router's clock. */
function startHealthChecks(router, clock, check, options) {
  if (typeof check !== 'function') throw typeError('check', 'a function (provider) => Promise', check);
  const o = options ?? {};
  const maxSleepMs = checkPositive(o.maxSleepMs ?? 1000, 'options.maxSleepMs');
  const onEvent = checkFunction(o.onEvent, 'options.onEvent');
  const onError = checkFunction(o.onError, 'options.onError');
  const classifyFn = o.classify ?? classifyError;
  const clockMs = clock ?? native.monotonicNow;
  const ac = new AbortController();
  const inflight = new Set();
  let timer;
  let stopped = false;
  const report = (e) => {
    if (onError) onError(e);
    else process.emitWarning(e instanceof Error ? e : String(e), { code: 'FAILOVER_HEALTH_CHECK' });
  };
  const schedule = (ms) => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(tick, ms);
    timer.unref?.();
  };
  const runCheck = (ticket) => {
    const p = (async () => {
      const t0 = clockMs();
      let cls;
      try {
        cls = checkResult(await check(ticket.provider, { ticket, signal: ac.signal }));
      } catch (e) {
        cls = classifyFn(e) ?? kind('server_error');
      }
      // A check cut short by stop() releases its probe permit instead of holding it until it
      // expires (the core ignores cancellations otherwise).
      if (stopped) cls = kind('cancelled');
      const t1 = clockMs();
      const latency = cls.latency_ms ?? elapsed(t0, t1);
      router.record(ticket, { outcome: cls.outcome, latency_ms: latency, retry_after_ms: cls.retry_after_ms ?? null }, t1);
    })()
      .catch(report)
      .finally(() => {
        inflight.delete(p);
        schedule(0);
      });
    inflight.add(p);
  };
  const tick = () => {
    if (stopped) return;
    try {
      router.handleTimeout();
      for (let t = router.pollAction(); t !== null; t = router.pollAction()) runCheck(t);
      if (onEvent) for (const e of router.drainEvents()) onEvent(e);
      const due = router.pollTimeout();
      schedule(due === null ? maxSleepMs : Math.min(maxSleepMs, Math.max(5, due - clockMs())));
    } catch (e) {
      report(e);
      schedule(maxSleepMs);
    }
  };
  schedule(0);
  return {
    get running() {
      return !stopped;
    },
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      ac.abort(new DOMException('health-check loop stopped', 'AbortError'));
      await Promise.allSettled([...inflight]);
    },
  };
}

module.exports = { startHealthChecks };
