'use strict';
// The examples in README.md run (JavaScript) and type-check (TypeScript), so they cannot rot.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const pkg = require('./package.js');
// The folder that holds the package: this checkout's bindings/node, or the test folder outside
// the repository that installed it.
const root = path.join(__dirname, '..');
// The README shipped in the package under test.
const readme = fs.readFileSync(path.join(pkg.dir, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```(js|ts)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], code: m[2] }));
// Blocks of a line or two are fragments (the require/import lines), not programs.
const programs = blocks.filter((b) => b.code.trim().split('\n').length > 3);

test('README has runnable JavaScript and TypeScript examples', () => {
  assert.ok(programs.filter((b) => b.lang === 'js').length >= 3);
  assert.ok(programs.filter((b) => b.lang === 'ts').length >= 1);
});

// Examples are written inside the package so `failover-core` resolves to it by name.
const scratch = fs.mkdtempSync(path.join(root, '.readme-'));
test.after(() => fs.rmSync(scratch, { recursive: true, force: true }));

programs
  .filter((b) => b.lang === 'js')
  .forEach((b, i) => {
    test(`README JavaScript example ${i + 1} runs`, () => {
      const file = path.join(scratch, `example-${i + 1}.${/^import /m.test(b.code) ? 'mjs' : 'cjs'}`);
      fs.writeFileSync(file, b.code);
      const out = execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 20_000 });
      assert.ok(out.length > 0);
    });
  });

test('README TypeScript examples type-check', () => {
  const files = programs
    .filter((b) => b.lang === 'ts')
    .map((b, i) => {
      const file = path.join(scratch, `example-${i + 1}.ts`);
      fs.writeFileSync(file, `${b.code}\nexport {};\n`);
      return file;
    });
  const tsconfig = path.join(scratch, 'tsconfig.json');
  const base = JSON.parse(fs.readFileSync(path.join(__dirname, 'tsconfig.json'), 'utf8'));
  fs.writeFileSync(tsconfig, JSON.stringify({ compilerOptions: base.compilerOptions, files: files.map((f) => path.basename(f)) }));
  const tsc = require.resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', tsconfig], { encoding: 'utf8', timeout: 60_000 });
});
