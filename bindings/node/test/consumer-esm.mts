// The same package through `import` (the `import` condition: index.d.mts), type-checked only.
import failover, { Router, type ProviderView } from 'failover-core';

const r: Router = new failover.Router(['a', 'b']);
const t = r.pick();
const v: ProviderView | null = r.view(t.provider);
const out: Promise<number> = new Router(['x']).call(async () => 42);
console.log(v?.state, out);
