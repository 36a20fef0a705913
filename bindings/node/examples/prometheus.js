'use strict';
// failover-core's OpenTelemetry metrics served to Prometheus by OpenTelemetry's Prometheus
// exporter (`npm install @opentelemetry/api @opentelemetry/sdk-metrics
// @opentelemetry/exporter-prometheus`). Run it (`node examples/prometheus.js [port]`) and scrape
// http://127.0.0.1:9464/metrics: `failover_attempts_total`, `failover_circuit_state`,
// `failover_attempt_duration_seconds_bucket`, … (docs/otel.md). test/prometheus.test.js runs
// `serve` on a free port and scrapes it over HTTP.

const { MeterProvider } = require('@opentelemetry/sdk-metrics');
const { PrometheusExporter } = require('@opentelemetry/exporter-prometheus');
const { Router } = require('failover-core');
const { instrument } = require('failover-core/otel');

/**
 * Instruments `router` and serves its metrics at `http://host:port/metrics`. Resolves once the
 * server listens, to `{ url, stop }`; `stop()` uninstruments the router, stops the server and
 * shuts the meter provider down.
 */
async function serve(router, { port = 9464, host = '127.0.0.1' } = {}) {
  const exporter = new PrometheusExporter({ host, port, preventServerStart: true });
  const meterProvider = new MeterProvider({ readers: [exporter] });
  const handle = instrument(router, { meterProvider, spans: false });
  await exporter.startServer();
  return {
    url: `http://${host}:${port}${PrometheusExporter.DEFAULT_OPTIONS.endpoint}`,
    async stop() {
      handle.uninstrument();
      await meterProvider.shutdown(); // shuts the exporter down, which stops its server
    },
  };
}

/** Some traffic: openai fails once (a failover to anthropic, which opens openai's circuit). */
async function traffic(router) {
  return router.call(async ({ provider }) => {
    if (provider === 'openai') throw Object.assign(new Error('HTTP 503'), { status: 503 });
    return `answered by ${provider}`;
  });
}

module.exports = { serve, traffic };

if (require.main === module) {
  const router = new Router(['openai', 'anthropic'], { consecutive_failures: 1 });
  serve(router, { port: Number(process.argv[2] ?? 9464) }).then(async ({ url }) => {
    console.log(await traffic(router));
    console.log(`scrape ${url} (Ctrl-C to stop)`);
  });
}
