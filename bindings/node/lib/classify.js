'use strict';
// Classification helpers: the core's classify_status / parse_retry_after, and responses and errors
// of common clients classified by the core's table from the facts `lib/facts.js` reads off them
// (the same facts `router.call` and `router.stream` report).

const native = require('../native.js');
const { typeError, checkTime } = require('./errors.js');
const { errorFacts, responseFacts, isResponseLike } = require('./facts.js');

/** A classification with no retry hint. */
const kind = (outcome) => ({ outcome, retry_after_ms: null });
/** The outcome kind of an HTTP status (the core's `classify_status`). */
function classifyStatus(status) {
  if (typeof status !== 'number') throw typeError('status', 'an integer HTTP status', status);
  return native.classifyStatusCode(status);
}

/**
 * A `Retry-After` value (delta-seconds, also decimal, or an HTTP-date) in ms from now, or null
 * (the core's `parse_retry_after`). An HTTP-date needs `nowUnixMs`, the wall clock (Date.now()).
 */
function parseRetryAfter(value, nowUnixMs) {
  if (typeof value !== 'string') throw typeError('value', 'a string', value);
  if (nowUnixMs === undefined || nowUnixMs === null) return native.parseRetryAfterValue(value, null);
  return native.parseRetryAfterValue(value, checkTime(nowUnixMs, 'nowUnixMs'));
}

/**
 * Classifies an HTTP status and its `Retry-After` header value: `{outcome, retry_after_ms}`, the
 * shape of the scenario files' `http` step.
 */
function classifyHttp(status, retryAfter, nowUnixMs) {
  const outcome = classifyStatus(status);
  let ms = null;
  if (retryAfter !== undefined && retryAfter !== null) {
    ms = parseRetryAfter(String(retryAfter), nowUnixMs ?? Date.now());
  }
  return { outcome, retry_after_ms: ms };
}

/**
 * Classifies a fetch `Response` (or anything with `status` and `headers`): `{outcome,
 * retry_after_ms}`, from its facts through the core's classification table (`nowUnixMs`, the wall
 * clock, resolves an HTTP-date `Retry-After`; default `Date.now()`).
 */
function classifyResponse(response, nowUnixMs) {
  if (typeof response !== 'object' || response === null || typeof response.status !== 'number') {
    throw typeError('response', 'an object with a numeric `status`', response);
  }
  const f = responseFacts(response);
  if (f.retry_after !== null && nowUnixMs !== undefined && nowUnixMs !== null) {
    f.now_unix_ms = checkTime(nowUnixMs, 'nowUnixMs');
  }
  return native.classify(f);
}

/**
 * Classifies a thrown error by duck typing (`lib/facts.js`: an HTTP `status` with `headers` and
 * the provider's error body, as the openai and anthropic SDKs throw, or axios' `response`;
 * timeouts, aborts and socket failures anywhere in the `cause` chain) through the core's
 * classification table. An error with no fact about the provider is `server_error` here, for
 * callers such as health checks that treat any thrown error as a failed call (`router.call`
 * re-throws such an error and counts nothing instead). Never throws.
 */
function classifyError(err, nowUnixMs) {
  const f = errorFacts(err);
  if (f === null) return kind('server_error');
  if (f.retry_after !== undefined && f.retry_after !== null && nowUnixMs !== undefined && nowUnixMs !== null) {
    f.now_unix_ms = checkTime(nowUnixMs, 'nowUnixMs');
  }
  return native.classify(f);
}

/** Classifies a response-like value or a thrown error. */
function classify(value, nowUnixMs) {
  if (isResponseLike(value)) return classifyResponse(value, nowUnixMs);
  return classifyError(value, nowUnixMs);
}

module.exports = {
  classify, classifyError, classifyHttp, classifyResponse, classifyStatus, parseRetryAfter,
  isResponseLike, kind,
};
