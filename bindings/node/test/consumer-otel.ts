// Type-checks `failover-core/otel` with the SDK's providers (not run; test/otel.test.js runs it).
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { Router } from 'failover-core';
import { instrument, type Instrumentation, type InstrumentOptions, SCOPE } from 'failover-core/otel';

const router = new Router(['openai', 'anthropic']);
const options: InstrumentOptions = {
  meterProvider: new MeterProvider(),
  tracerProvider: new BasicTracerProvider(),
  models: { openai: 'gpt-4o' },
  spans: false,
};
const handle: Instrumentation = instrument(router, options);
const scope: 'failover-core' = SCOPE;
instrument(router).uninstrument();
handle.uninstrument();
void scope;
