// Types of the ES module entry point (index.mjs): the same API as index.d.ts.
import * as failoverCore from './index.js';

export * from './index.js';
export default failoverCore;
