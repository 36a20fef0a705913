// Types of `failover-core/otel` (otel.js). Needs `@opentelemetry/api` (an optional peer
// dependency of failover-core) installed.
import type { MeterProvider, TracerProvider } from '@opentelemetry/api';
import type { Router } from './index';

export interface InstrumentOptions {
  /** Default: the global meter provider (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProvider;
  /** Default: the global tracer provider (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider;
  /** Provider name to the model asked for (`gen_ai.request.model`). */
  models?: Record<string, string>;
  /** `gen_ai.operation.name` and the spans' name; default `'chat'`. */
  operation?: string;
  /** One span per attempt; default true. */
  spans?: boolean;
  /** The attempt duration and time-to-first-token histograms; default true. */
  histograms?: boolean;
}

/** The metrics and spans of one router. */
export declare class Instrumentation {
  private constructor();
  /** Stops recording (the router's observer goes back to what it was before). */
  uninstrument(): void;
}

/** The instrumentation scope's name (meter and tracer): `'failover-core'`. */
export declare const SCOPE: 'failover-core';

/**
 * Records `router`'s metrics (docs/otel.md) and, unless `spans: false`, one span per attempt.
 */
export declare function instrument(router: Router, options?: InstrumentOptions): Instrumentation;
