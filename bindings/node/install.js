'use strict';
// `npm install` hook: builds the native addon from source with the napi CLI (@napi-rs/cli, a
// dependency of this package) and Rust's cargo. Works both when this folder is the project being
// installed (`npm ci` here) and when an application installs it by path
// (`npm install ./bindings/node`), where npm links the folder without installing its
// dependencies: the CLI is then installed here first (from package-lock.json, scripts off).

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const here = __dirname;

function fail(message) {
  process.stderr.write(`\nfailover-core: ${message}\n\n`);
  process.exit(1);
}

function findCli() {
  for (const base of [here, process.env.INIT_CWD].filter(Boolean)) {
    try {
      const pkgJson = require.resolve('@napi-rs/cli/package.json', { paths: [base] });
      const bin = JSON.parse(fs.readFileSync(pkgJson, 'utf8')).bin;
      return path.join(path.dirname(pkgJson), typeof bin === 'string' ? bin : bin.napi);
    } catch {
      // Not installed under this base.
    }
  }
  return null;
}

if (!fs.existsSync(path.join(here, '..', '..', 'crates', 'failover-core', 'Cargo.toml'))) {
  fail(
    'the native addon is built from the failover-core repository, but this copy of the package is ' +
      'outside it. Install it by path from a checkout (`npm install ./bindings/node`, without ' +
      '--install-links).',
  );
}
try {
  execFileSync('cargo', ['--version'], { stdio: 'ignore' });
} catch {
  fail('building the native addon needs Rust (cargo on PATH): see https://rustup.rs');
}

let cli = findCli();
if (cli === null) {
  execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], {
    cwd: here,
    stdio: 'inherit',
  });
  cli = findCli();
  if (cli === null) fail('could not install the napi CLI (@napi-rs/cli)');
}
execFileSync(
  process.execPath,
  [cli, 'build', '--platform', '--release', '--js', 'native.js', '--dts', 'native.d.ts'],
  { cwd: here, stdio: 'inherit' },
);
