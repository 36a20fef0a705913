'use strict';
// `npm install` hook of a checkout of the repository (`npm ci` in bindings/node, or
// `npm install /path/to/checkout/bindings/node` from an application): builds the native addon from
// source with the napi CLI and cargo, showing the build's progress (npm hides an install script's
// output unless --foreground-scripts, so it is written to the terminal directly when there is one).
//
// The package packed by scripts/package.sh ships neither this file nor the hook: its addon comes
// prebuilt in the platform package, and lib/addon.js says what to do where none loads.

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const here = __dirname;

function fail(message) {
  process.stderr.write(`\nfailover-core: ${message}\n\n`);
  process.exit(1);
}

if (!fs.existsSync(path.join(here, '..', '..', 'crates', 'failover-core', 'Cargo.toml'))) {
  // A plain `npm pack` of bindings/node (it ships this hook but no addon and no Rust sources).
  fail(
    'this copy of bindings/node is outside the failover-core repository, so its native addon can ' +
      'neither be built here nor come prebuilt: a plain `npm pack` tarball carries neither. In a ' +
      'checkout, `bash scripts/package.sh node` packs the package with its prebuilt platform ' +
      'package (npm install dist/failover-core-*.tgz), or install the checkout\'s bindings/node by path.',
  );
}

// From here on: a source build in the checkout. Its output goes to the terminal when npm captures
// ours (npm prints a script's output only if it fails, so a minute-long build looked hung).
let out = 'inherit';
if (!process.stderr.isTTY) {
  try {
    out = fs.openSync('/dev/tty', 'w');
  } catch {
    // No terminal (CI): npm shows the output if the build fails, or live with --foreground-scripts.
  }
}
const say = (line) => (typeof out === 'number' ? fs.writeSync(out, `${line}\n`) : process.stderr.write(`${line}\n`));

try {
  execFileSync('cargo', ['--version'], { stdio: 'ignore' });
} catch {
  fail('building the native addon from source needs Rust (cargo on PATH): see https://rustup.rs');
}

const cliVersion = require('./package.json').devDependencies['@napi-rs/cli'];
// Where the CLI is installed when this folder has no node_modules (outside the checkout).
const cliPrefix = path.join(require('node:os').tmpdir(), `failover-core-napi-cli-${cliVersion}`);

function findCli() {
  for (const base of [here, process.env.INIT_CWD, cliPrefix].filter(Boolean)) {
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

let cli = findCli();
if (cli === null) {
  // Installed by path, npm links this folder without its devDependencies: fetch the CLI alone, at
  // the version package.json pins, into a folder of its own (nothing is written to the checkout).
  say(`failover-core: installing the napi CLI (@napi-rs/cli@${cliVersion}) into ${cliPrefix}`);
  execFileSync(
    'npm',
    ['install', '--prefix', cliPrefix, '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', `@napi-rs/cli@${cliVersion}`],
    { cwd: here, stdio: ['ignore', out, out] },
  );
  cli = findCli();
  if (cli === null) fail('could not install the napi CLI (@napi-rs/cli)');
}
say('failover-core: building the native addon from source (cargo build --release; about a minute cold)');
execFileSync(
  process.execPath,
  [cli, 'build', '--platform', '--release', '--js', 'native.js', '--dts', 'native.d.ts'],
  { cwd: here, stdio: ['ignore', out, out] },
);
say('failover-core: native addon built');
