'use strict';
// A real Redis for the fleet tests (the twin of bindings/python/tests/redis_server.py): finds
// `redis-server` (scripts/ensure-redis.sh installs Debian's package), starts it on a free
// 127.0.0.1 port with no persistence, and stops it by its process id. Every wait is bounded in
// count and time.

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

/** The redis-server binary, or null. */
function findServer() {
  if (process.env.REDIS_SERVER) return process.env.REDIS_SERVER;
  try {
    return execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function ping(port, timeoutMs = 200) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      data += d;
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One `redis-server` process of this test run. */
class RedisServer {
  constructor(binary, port) {
    this.binary = binary;
    this.port = port;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'failover-redis-'));
    this.proc = null;
  }

  static async create(binary) {
    return new RedisServer(binary, await freePort());
  }

  get url() {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  async start() {
    const p = spawn(this.binary, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '',
      '--appendonly', 'no', '--dir', this.dir, '--protected-mode', 'no'], { stdio: 'ignore' });
    this.proc = p;
    let exited = null;
    p.on('exit', (code) => {
      exited = code;
    });
    for (let i = 0; i < 100; i++) { // at most ~10 s
      if (exited !== null) throw new Error(`redis-server exited with ${exited}`);
      if (await ping(this.port)) return;
      await sleep(100);
    }
    await this.stop();
    throw new Error('redis-server did not answer PING within 10 s');
  }

  pause() {
    process.kill(this.proc.pid, 'SIGSTOP');
  }

  resume() {
    process.kill(this.proc.pid, 'SIGCONT');
  }

  async stop() {
    const p = this.proc;
    this.proc = null;
    if (p === null || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    process.kill(p.pid, 'SIGCONT'); // a stopped process would not see SIGTERM
    process.kill(p.pid, 'SIGTERM');
    const t = setTimeout(() => process.kill(p.pid, 'SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }
}

module.exports = { RedisServer, findServer };
