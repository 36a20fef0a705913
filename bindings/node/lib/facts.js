'use strict';
// Facts for the core's classification table (`classify` in native.js; the table is in the
// core's `classify` module), read off what a provider call returned or threw, by duck typing and
// with no client library as a dependency:
//
// - the `openai` and `@anthropic-ai/sdk` SDKs: `APIError` (`status`, `headers`, the body's
//   `error.code` / `error.type` / `message`: OpenAI keeps the body's `error` object in `.error`,
//   Anthropic the whole body `{type: "error", error: {type, message}}`), `APIConnectionTimeoutError`
//   (timeout), `APIConnectionError` (connection), `APIUserAbortError` (aborted);
// - `fetch`: a returned `Response` (status, headers); `TypeError: fetch failed` whose `cause` is an
//   undici or socket error (`UND_ERR_*`, `ECONNRESET`, `ETIMEDOUT`, ...); `AbortError` /
//   `TimeoutError` DOMExceptions;
// - anything else carrying a numeric `status` (or axios' `response.status`) with `headers`.
//
// An error in which none of this is found yields null: nothing is attributable to the provider
// (a TypeError in the caller's own code), so the driver re-throws it and records nothing.

const TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  23, // DOMException.TIMEOUT_ERR
]);
const TIMEOUT_NAMES = new Set(['TimeoutError', 'APIConnectionTimeoutError', 'ConnectTimeoutError', 'HeadersTimeoutError', 'BodyTimeoutError']);
const ABORT_NAMES = new Set(['AbortError', 'APIUserAbortError', 'RequestAbortedError']);
const ABORT_CODES = new Set(['ABORT_ERR', 'UND_ERR_ABORTED', 20]); // 20: DOMException.ABORT_ERR
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
  'UND_ERR_DESTROYED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ERR_STREAM_PREMATURE_CLOSE',
]);
const CONNECTION_NAMES = new Set(['APIConnectionError', 'FetchError', 'SocketError']);
/** Names of the SDKs' errors that carry a provider's error body even without a status. */
const API_ERROR_NAMES = new Set(['APIError', 'InternalServerError', 'RateLimitError', 'BadRequestError']);

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

/** A header's value (Headers, or a plain object with any case; arrays give their first), or null. */
function header(headers, name) {
  if (headers === undefined || headers === null || typeof headers !== 'object') return null;
  if (typeof headers.get === 'function') {
    const v = headers.get(name);
    return typeof v === 'string' ? v : null;
  }
  for (const k of Object.keys(headers)) {
    if (k.toLowerCase() === name) {
      const v = Array.isArray(headers[k]) ? headers[k][0] : headers[k];
      return v === undefined || v === null ? null : String(v);
    }
  }
  return null;
}

const str = (v) => (typeof v === 'string' ? v : null);
const validStatus = (s) => Number.isInteger(s) && s >= 0 && s <= 65535;

/** Facts of an answer with `status` and `headers` (a fetch Response, an SDK APIError). */
function httpFacts(status, headers) {
  const retryAfter = header(headers, 'retry-after');
  return {
    status,
    retry_after: retryAfter,
    retry_after_ms: header(headers, 'retry-after-ms'),
    x_ms_retry_after_ms: header(headers, 'x-ms-retry-after-ms'),
    now_unix_ms: retryAfter === null ? null : Date.now(),
  };
}

/** Adds the provider's error body (`error.code`, `error.type`, message) of an SDK error. */
function bodyFacts(f, e) {
  const body = e.error !== null && typeof e.error === 'object' ? e.error : null;
  // Anthropic: {type: "error", error: {type, message}}; OpenAI: {message, type, param, code}.
  const inner = body !== null && body.error !== null && typeof body.error === 'object' ? body.error : body;
  f.error_code = str(inner?.code) ?? str(e.code);
  f.error_type = str(inner?.type) ?? str(e.type);
  f.message = str(inner?.message) ?? str(e.message);
  return f;
}

/** Facts of a returned value that looks like a fetch `Response`. */
function responseFacts(r) {
  return httpFacts(r.status, r.headers);
}

/**
 * The facts of a thrown error, or null when nothing in it is attributable to the provider.
 * Transport problems anywhere in the cause chain win (the attempt did not end with an answer).
 */
function errorFacts(err) {
  let http = null;
  for (const e of errorChain(err)) {
    const name = errorName(e);
    if (isTimeout(e)) return { transport: 'timeout' };
    if (ABORT_NAMES.has(name) || ABORT_CODES.has(e.code)) {
      // An abort whose reason is a timeout (AbortSignal.timeout) is a timeout.
      const reason = e.cause ?? e.reason;
      return { transport: reason !== null && typeof reason === 'object' && isTimeout(reason) ? 'timeout' : 'aborted' };
    }
    if (CONNECTION_CODES.has(e.code) || CONNECTION_NAMES.has(name)) return { transport: 'connection' };
    if (http !== null) continue;
    const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : e.response?.status;
    if (validStatus(status)) {
      http = bodyFacts(httpFacts(status, e.headers ?? e.response?.headers), e);
    } else if (API_ERROR_NAMES.has(name) && e.error !== null && typeof e.error === 'object') {
      // An error event inside a stream (the SDKs throw an APIError without a status).
      http = bodyFacts({}, e);
      if (http.error_code === null && http.error_type === null) http.transport = 'protocol';
    }
  }
  return http;
}

/** Whether `v` looks like a fetch `Response` (a numeric status and a headers object). */
function isResponseLike(v) {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.status === 'number' &&
    typeof v.headers === 'object' &&
    v.headers !== null &&
    (typeof v.headers.get === 'function' || typeof v.ok === 'boolean') &&
    !(v instanceof Error)
  );
}

/** Whether a header name is a rate-limit header the core reads (`x-ratelimit-*`, `anthropic-ratelimit-*`). */
function isRateLimitName(k) {
  return typeof k === 'string' && /^(x-ratelimit-|anthropic-ratelimit-)/i.test(k);
}

/**
 * The rate-limit headers of `headers` as `[name, value]` string pairs, for the core's `Headroom`:
 * a fetch `Headers` or a `Map` (anything iterable over pairs), an array of pairs, or a plain object
 * (Node's `IncomingHttpHeaders`, axios; a repeated header's first value). Other headers are left
 * out, so only what the core reads crosses into it. An empty array for anything else.
 */
function rateLimitPairs(headers) {
  const out = [];
  if (headers === undefined || headers === null || typeof headers !== 'object') return out;
  const add = (k, v) => {
    if (Array.isArray(v)) v = v[0];
    if (isRateLimitName(k) && typeof v === 'string') out.push([k, v]);
  };
  if (typeof headers[Symbol.iterator] === 'function') {
    for (const pair of headers) if (Array.isArray(pair) && pair.length === 2) add(pair[0], pair[1]);
  } else {
    for (const k of Object.keys(headers)) add(k, headers[k]);
  }
  return out;
}

module.exports = { errorFacts, responseFacts, isResponseLike, errorChain, isTimeout, header, rateLimitPairs };
