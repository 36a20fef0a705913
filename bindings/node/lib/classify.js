'use strict';
// Classification: the core's classify_status / parse_retry_after, plus duck typing of responses
// and errors of common clients (fetch, the openai / anthropic SDKs, Node's net errors), with no
// dependency on any of them.

const native = require('../native.js');
const { typeError, checkTime } = require('./errors.js');

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

function header(headers, name) {
  if (headers === undefined || headers === null || typeof headers !== 'object') return undefined;
  if (typeof headers.get === 'function') {
    const v = headers.get(name);
    return v === null ? undefined : v;
  }
  for (const k of Object.keys(headers)) {
    if (k.toLowerCase() === name) {
      const v = headers[k];
      return Array.isArray(v) ? v[0] : v;
    }
  }
  return undefined;
}

/** The retry hint in headers: `retry-after-ms` (OpenAI) first, then `retry-after`; or null. */
function retryAfterFromHeaders(headers, nowUnixMs) {
  const ms = header(headers, 'retry-after-ms');
  if (ms !== undefined && ms !== null) {
    // Milliseconds, possibly decimal: the core's seconds parser gives 1000 × the value.
    const v = native.parseRetryAfterValue(String(ms), null);
    if (v !== null) return Math.ceil(v / 1000);
  }
  const ra = header(headers, 'retry-after');
  if (ra === undefined || ra === null) return null;
  return native.parseRetryAfterValue(String(ra), nowUnixMs ?? Date.now());
}

/** Whether `v` looks like a fetch `Response` (a numeric status and a headers object). */
function isResponseLike(v) {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.status === 'number' &&
    typeof v.headers === 'object' &&
    v.headers !== null &&
    (typeof v.headers.get === 'function' || typeof v.ok === 'boolean')
  );
}

/**
 * Classifies a fetch `Response` (or anything with `status` and `headers`): `{outcome,
 * retry_after_ms}`.
 */
function classifyResponse(response, nowUnixMs) {
  if (typeof response !== 'object' || response === null || typeof response.status !== 'number') {
    throw typeError('response', 'an object with a numeric `status`', response);
  }
  return {
    outcome: classifyStatus(response.status),
    retry_after_ms: retryAfterFromHeaders(response.headers, nowUnixMs),
  };
}

const TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  23, // DOMException.TIMEOUT_ERR
]);
const TIMEOUT_NAMES = new Set(['TimeoutError', 'APIConnectionTimeoutError', 'ConnectTimeoutError']);
const ABORT_NAMES = new Set(['AbortError', 'APIUserAbortError']);
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'ERR_STREAM_PREMATURE_CLOSE',
]);
const CONNECTION_NAMES = new Set(['APIConnectionError', 'FetchError', 'SocketError']);

function errorName(e) {
  const n = typeof e.name === 'string' && e.name !== 'Error' ? e.name : undefined;
  return n ?? e.constructor?.name;
}

const isTimeout = (e) => TIMEOUT_NAMES.has(errorName(e)) || TIMEOUT_CODES.has(e.code);

/** Walks an error, its `cause` chain and `AggregateError.errors`, breadth first (bounded). */
function* errorChain(err) {
  const queue = [err];
  const seen = new Set();
  while (queue.length > 0 && seen.size < 16) {
    const e = queue.shift();
    if (e === null || (typeof e !== 'object' && typeof e !== 'function') || seen.has(e)) continue;
    seen.add(e);
    yield e;
    if (e.cause !== undefined) queue.push(e.cause);
    if (Array.isArray(e.errors)) queue.push(...e.errors.slice(0, 4));
  }
}

/**
 * Classifies a thrown error by duck typing: an HTTP `status` (+ `headers`, as the openai and
 * anthropic SDKs throw; `response.status` as axios does) goes through the core's classification;
 * `TimeoutError`, `ETIMEDOUT` and undici timeouts are `timeout`; `AbortError` is `cancelled`;
 * `ECONNREFUSED`, `ECONNRESET` and other socket failures (also as the `cause` of fetch's
 * "fetch failed") are `connection_error`; anything else is `server_error` (an unknown failure
 * counts against the provider). Never throws.
 */
function classifyError(err, nowUnixMs) {
  for (const e of errorChain(err)) {
    const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : e.response?.status;
    if (Number.isInteger(status) && status >= 0 && status <= 65535) {
      const outcome = native.classifyStatusCode(status);
      if (outcome !== 'success') {
        return {
          outcome,
          retry_after_ms: retryAfterFromHeaders(e.headers ?? e.response?.headers, nowUnixMs),
        };
      }
    }
    const name = errorName(e);
    if (isTimeout(e)) return kind('timeout');
    if (ABORT_NAMES.has(name) || e.code === 'ABORT_ERR') {
      // An abort whose reason is a timeout (AbortSignal.timeout) is a timeout.
      const reason = e.cause ?? e.reason;
      return kind(reason && isTimeout(reason) ? 'timeout' : 'cancelled');
    }
    if (CONNECTION_CODES.has(e.code) || CONNECTION_NAMES.has(name)) return kind('connection_error');
  }
  return kind('server_error');
}

/** Classifies a response-like value or a thrown error. */
function classify(value, nowUnixMs) {
  if (isResponseLike(value) && !(value instanceof Error)) return classifyResponse(value, nowUnixMs);
  return classifyError(value, nowUnixMs);
}

module.exports = {
  classify, classifyError, classifyHttp, classifyResponse, classifyStatus, parseRetryAfter,
  isResponseLike, kind,
};
