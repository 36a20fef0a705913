'use strict';
// The failover-core package under test, found by name: this checkout's bindings/node (Node's
// self-reference, `node --test test/` here), or node_modules/failover-core in the folder outside
// the repository where test.sh installs the packed tarballs and copies this test folder.
// Tests reach the package's private modules (native.js, lib/*.js) through `load`, so they run
// against the same files as `require('failover-core')`.

const path = require('node:path');

/** The installed package's folder. */
const dir = path.dirname(require.resolve('failover-core/package.json'));

/** `require` of a file of the package, by its path inside it (`'native.js'`, `'lib/io.js'`). */
function load(file) {
  return require(path.join(dir, file));
}

module.exports = { dir, load };
