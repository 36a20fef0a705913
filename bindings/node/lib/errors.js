'use strict';
// The package's error classes, and the TypeError / RangeError of a bad argument. The native
// module constructs ConfigError, UnavailableError and InternalError itself (src/error.rs), so
// their code and message always come from the core.

const native = require('../native.js');

/** Base class of the errors this package throws (except TypeError / RangeError for bad input). */
class FailoverError extends Error {
  constructor(message, code, options) {
    super(message, options);
    this.name = new.target.name;
    if (code !== undefined) this.code = code;
  }
}

/** A policy or provider list the core refused. `code` is the core's stable code. */
class ConfigError extends FailoverError {}

/** No provider may be called now; `retry_after_ms` says when the soonest one is expected back. */
class UnavailableError extends FailoverError {}

/** The engine panicked (a bug); the router that panicked is closed. */
class InternalError extends FailoverError {}

/** A provider answered with an HTTP status that counts as a failure (from `router.call`). */
class HttpStatusError extends FailoverError {
  constructor(response, classification) {
    super(`provider answered HTTP ${response.status}`, 'http_status');
    this.status = response.status;
    this.headers = response.headers;
    this.response = response;
    this.outcome = classification.outcome;
    this.retry_after_ms = classification.retry_after_ms;
  }
}

/**
 * The request gave up (Python: `AllAttemptsFailed`): every attempt failed, the attempt budget or
 * the request's deadline ran out, or no provider could be tried. `reason` is the core's name.
 */
class AllProvidersFailedError extends AggregateError {
  constructor(errors, retryAfterMs, attempts, message, reason = null) {
    super(
      errors,
      message ??
        (attempts.length === 0 ? 'no provider available' : `all ${attempts.length} attempt(s) failed`) +
          (reason === null ? '' : ` (${reason})`) +
          (retryAfterMs === null ? '' : `; retry after ${retryAfterMs} ms`),
    );
    this.name = 'AllProvidersFailedError';
    this.code = 'all_providers_failed';
    /** Why the request gave up: `no_provider`, `attempts`, `deadline` (the core's names). */
    this.reason = reason;
    /** When the soonest provider is expected to take traffic again, ms from now (or null). */
    this.retry_after_ms = retryAfterMs;
    /** One entry per failed attempt: provider, outcome, error, latency_ms, retry_after_ms, number. */
    this.attempts = attempts;
  }
}

/**
 * A stream failed after its first content reached the caller (Python: `StreamBroken`): no
 * failover is possible then. `provider` is the one that broke, `outcome` how (`stream_cut`,
 * `stalled`, or the error's kind), `chunks` everything already delivered, `error` the cause.
 */
class StreamBrokenError extends FailoverError {
  constructor(provider, outcome, chunks, error) {
    super(`${provider}'s stream broke after content (${outcome})`, 'stream_broken', error === null || error === undefined ? undefined : { cause: error });
    this.provider = provider;
    this.outcome = outcome;
    this.chunks = chunks;
    this.error = error ?? null;
  }
}

/**
 * An in-band error chunk in a provider's stream (an SSE `error` event, a chunk with an `error`
 * member, Anthropic's `{ type: 'error', error: { type: 'overloaded_error' } }`), as the core's
 * chunk table classified it (Python: `ProviderStreamError`): `provider`, the outcome `kind`
 * recorded, and the `chunk`. Before content the request fails over; after content it is the
 * `error` of `StreamBrokenError`.
 */
class ProviderStreamError extends FailoverError {
  constructor(provider, kind, chunk) {
    super(`${provider}'s stream sent an error chunk (${kind})`, 'provider_stream_error');
    this.provider = provider;
    this.kind = kind;
    this.chunk = chunk;
  }
}

native.registerErrorClasses(ConfigError, UnavailableError, InternalError);

// Argument checks (the native side repeats them for direct callers of native.js).

/** How a bad argument reads in a message. */
function describe(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return `a ${typeof v}`;
}

function withCode(e, code) {
  e.code = code;
  return e;
}

function typeError(arg, expected, got) {
  return withCode(new TypeError(`\`${arg}\` must be ${expected}, got ${describe(got)}`), 'ERR_INVALID_ARG_TYPE');
}

function rangeError(arg, rule) {
  return withCode(new RangeError(`\`${arg}\` ${rule}`), 'ERR_OUT_OF_RANGE');
}

/** A positive safe integer option, or a RangeError naming it. */
function checkPositive(v, arg) {
  if (Number.isSafeInteger(v) && v > 0) return v;
  throw rangeError(arg, `must be a positive integer, got ${describe(v)}`);
}

/** An optional function argument (undefined passes). */
function checkFunction(v, arg, expected = 'a function') {
  if (v !== undefined && typeof v !== 'function') throw typeError(arg, expected, v);
  return v;
}

/** Validates a timestamp: an integer number of ms in 0..=2^53 − 1. */
function checkTime(v, arg) {
  if (Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v !== 'number') throw typeError(arg, 'a number of milliseconds', v);
  throw rangeError(
    arg,
    'must be an integer number of milliseconds between 0 and 2^53 - 1 ' +
      `(Number.MAX_SAFE_INTEGER), got ${describe(v)}`,
  );
}

module.exports = {
  FailoverError, ConfigError, UnavailableError, InternalError, HttpStatusError, AllProvidersFailedError,
  StreamBrokenError, ProviderStreamError, describe, withCode, typeError, rangeError, checkPositive, checkFunction, checkTime,
};
