'use strict';
// A fake LLM provider for the tests (the Node twin of bindings/python/tests/fake_provider.py):
// one local HTTP server (127.0.0.1, a free port) that speaks the OpenAI chat completions API
// (`POST /{provider}/v1/chat/completions`) and Anthropic's Messages API
// (`POST /{provider}/v1/messages`), plain and streamed (SSE, with Anthropic's event types and
// `ping`, OpenAI's `[DONE]` and a keep-alive comment), for any number of provider names, with
// scripted faults.
//
// `fake.script('primary', '503', '503')` makes the next two requests to `primary` fail with a
// 503; after its script, a provider answers. Every request is logged (`fake.calls`). Bounded: a
// `hang` or `stall` lasts at most HANG_MS or until `close()`, which also destroys every open
// socket, so a test never waits on the server.

const http = require('node:http');

/** The longest a scripted hang or stall holds its request, ms. */
const HANG_MS = 5_000;

/** Fault name -> [status, OpenAI error body, Anthropic error type, message, headers]. */
const FAULTS = {
  503: [503, { code: null, type: 'server_error' }, 'api_error', 'The server is overloaded', {}],
  '429_retry_after': [429, { code: 'rate_limit_exceeded', type: 'requests' }, 'rate_limit_error', 'Rate limit reached for requests', { 'retry-after': '5' }],
  '429_quota': [429, { code: 'insufficient_quota', type: 'insufficient_quota' }, 'rate_limit_error', 'You exceeded your current quota, please check your plan and billing details', {}],
  '400_content_filter': [400, { code: 'content_filter', type: 'invalid_request_error' }, 'invalid_request_error', 'The response was filtered due to the prompt triggering the content management policy', {}],
  '400_context_length': [400, { code: 'context_length_exceeded', type: 'invalid_request_error' }, 'invalid_request_error', 'prompt is too long: 250000 tokens > 200000 maximum context length', {}],
  401: [401, { code: 'invalid_api_key', type: 'invalid_request_error' }, 'authentication_error', 'invalid x-api-key', {}],
};

/**
 * Faults of a streamed answer (after a 200): a first token 1 s late, the connection closed after
 * one token, a stall after one token (up to HANG_MS), an unparseable event before any content,
 * every token but no terminal event, an in-band SSE error event before content (OpenAI's
 * `{"error": ...}` data, Anthropic's `event: error` with `overloaded_error`).
 */
const STREAM_FAULTS = new Set(['slow_first_token', 'cut_after_tokens', 'stall', 'malformed_chunk', 'missing_terminal', 'error_event']);

const sse = (data, event) => `${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`;

function openaiEvents(model) {
  const chunk = (delta, finish = null) =>
    sse({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 0, model, choices: [{ index: 0, delta, finish_reason: finish }] });
  return [
    [': keep-alive\n\n', chunk({ role: 'assistant', content: '' })],
    [chunk({ content: 'Hel' }), chunk({ content: 'lo' })],
    [chunk({}, 'stop'), 'data: [DONE]\n\n'],
  ];
}

function anthropicEvents(model) {
  const delta = (text) => sse({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }, 'content_block_delta');
  return [
    [
      sse({ type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 1, output_tokens: 1 } } }, 'message_start'),
      sse({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start'),
      sse({ type: 'ping' }, 'ping'),
    ],
    [delta('Hel'), delta('lo')],
    [
      sse({ type: 'content_block_stop', index: 0 }, 'content_block_stop'),
      sse({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 3 } }, 'message_delta'),
      sse({ type: 'message_stop' }, 'message_stop'),
    ],
  ];
}

function answer(api, provider, model) {
  const text = `hello from ${provider}`;
  if (api === 'openai') {
    return {
      id: 'chatcmpl-1', object: 'chat.completion', created: 0, model,
      choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, finish_reason: 'stop', logprobs: null }],
      usage: { prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 },
    };
  }
  return {
    id: 'msg_1', type: 'message', role: 'assistant', model,
    content: [{ type: 'text', text }], stop_reason: 'end_turn', stop_sequence: null,
    usage: { input_tokens: 1, output_tokens: 3 },
  };
}

class FakeProvider {
  constructor() {
    this.scripts = new Map();
    /** `{provider, api, fault}` per request, in arrival order. */
    this.calls = [];
    this.sockets = new Set();
    /** Timers of hangs and stalls in progress (cleared by close). */
    this.waits = new Set();
    this.closed = false;
    this.server = http.createServer((req, res) => this.#handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  /** Starts listening on 127.0.0.1, a free port. */
  async start() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    return this;
  }

  get port() {
    return this.server.address().port;
  }

  openaiUrl(provider) {
    return `http://127.0.0.1:${this.port}/${provider}/v1`;
  }

  anthropicUrl(provider) {
    return `http://127.0.0.1:${this.port}/${provider}`;
  }

  script(provider, ...faults) {
    for (const f of faults) {
      if (f !== 'ok' && f !== 'hang' && !(f in FAULTS) && !STREAM_FAULTS.has(f)) throw new Error(`unknown fault ${f}`);
    }
    if (!this.scripts.has(provider)) this.scripts.set(provider, []);
    this.scripts.get(provider).push(...faults);
  }

  /** Requests per provider: `{primary: 1, secondary: 1}`. */
  counts() {
    const out = {};
    for (const c of this.calls) out[c.provider] = (out[c.provider] ?? 0) + 1;
    return out;
  }

  /** Stops the server: ends every hang, destroys every socket. */
  async close() {
    this.closed = true;
    for (const t of this.waits) {
      clearTimeout(t.timer);
      t.resolve();
    }
    this.waits.clear();
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Waits `ms` (ended early by close). */
  #wait(ms) {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const w = { resolve };
      w.timer = setTimeout(() => {
        this.waits.delete(w);
        resolve();
      }, ms);
      this.waits.add(w);
    });
  }

  async #handle(req, res) {
    let raw = '';
    for await (const part of req) {
      raw += part;
      if (raw.length > 1_000_000) break;
    }
    let body = {};
    try {
      body = JSON.parse(raw || '{}');
    } catch {
      // a body the SDKs never send
    }
    const parts = req.url.replace(/^\/+|\/+$/g, '').split('/');
    const route = parts.slice(1).join('/');
    const api = route === 'v1/chat/completions' ? 'openai' : route === 'v1/messages' ? 'anthropic' : null;
    if (api === null) return this.#send(res, 404, { error: { message: `no route ${req.url}` } });
    const provider = parts[0];
    const script = this.scripts.get(provider) ?? [];
    let fault = script.length > 0 ? script.shift() : 'ok';
    this.calls.push({ provider, api, fault });
    if (fault === 'hang') {
      await this.#wait(HANG_MS);
      if (this.closed || res.destroyed) return undefined;
      fault = 'ok';
    }
    const model = body.model ?? 'm';
    if (body.stream && (fault === 'ok' || STREAM_FAULTS.has(fault))) return this.#stream(res, api, model, fault);
    if (fault === 'ok') return this.#send(res, 200, answer(api, provider, model));
    const [status, oai, atype, message, headers] = FAULTS[fault];
    const err = api === 'openai' ? { error: { message, param: null, ...oai } } : { type: 'error', error: { type: atype, message } };
    return this.#send(res, status, err, headers);
  }

  #send(res, status, body, headers = {}) {
    const data = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), ...headers });
    res.end(data);
  }

  async #stream(res, api, model, fault) {
    res.writeHead(200, { 'content-type': 'text/event-stream', connection: 'close' });
    const [head, tokens, tail] = api === 'openai' ? openaiEvents(model) : anthropicEvents(model);
    for (const e of head) res.write(e);
    if (fault === 'slow_first_token') await this.#wait(1_000);
    if (res.destroyed || this.closed) return;
    if (fault === 'error_event') {
      res.end(
        api === 'openai'
          ? sse({ error: { message: 'Overloaded', type: 'server_error', code: null } })
          : sse({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, 'error'),
      );
      return;
    }
    if (fault === 'malformed_chunk') {
      res.end(api === 'openai' ? 'data: {not json\n\n' : 'event: content_block_delta\ndata: {not json\n\n');
      return;
    }
    for (let i = 0; i < tokens.length; i++) {
      await new Promise((resolve) => res.write(tokens[i], resolve));
      if (fault === 'stall' && i === 0) {
        await this.#wait(HANG_MS);
        if (res.destroyed || this.closed) return;
      }
      if (fault === 'cut_after_tokens' && i === 0) {
        await this.#wait(50); // the token reaches the client first
        res.socket?.destroy(); // the connection closes mid-answer
        return;
      }
    }
    if (fault === 'missing_terminal') {
      res.end(api === 'openai' ? 'data: [DONE]\n\n' : ''); // [DONE] but no finish_reason
      return;
    }
    for (const e of tail) res.write(e);
    res.end();
  }
}

module.exports = { FakeProvider, FAULTS, STREAM_FAULTS, HANG_MS };
