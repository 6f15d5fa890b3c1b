// A JavaScript frontend: the OpenTelemetry JS SDK (TracerProvider, OTLP/HTTP
// JSON exporter, W3C trace-context propagator) calls a backend over HTTP
// with the traceparent of its client span, then exports its spans to a
// collector. Prints {"trace_id", "front", "call", "reply"} on stdout
// (reply: the backend's JSON answer).
// usage: node call_backend.js COLLECTOR_URL BACKEND_URL
'use strict';
const http = require('http');
const api = require('@opentelemetry/api');
const { W3CTraceContextPropagator } = require('@opentelemetry/core');
const { BasicTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { Resource } = require('@opentelemetry/resources');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');

const [collector, backend] = process.argv.slice(2);

function get(url, headers) {
  return new Promise((resolve, reject) => {
    http.get(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error('HTTP ' + res.statusCode))));
    }).on('error', reject);
  });
}

async function main() {
  api.propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const provider = new BasicTracerProvider({ resource: new Resource({ 'service.name': 'js-front' }) });
  provider.addSpanProcessor(new SimpleSpanProcessor(new OTLPTraceExporter({ url: collector + '/v1/traces' })));
  const tracer = provider.getTracer('e2e');
  const K = api.SpanKind;
  const front = tracer.startSpan('GET /page', { kind: K.SERVER });
  const call = tracer.startSpan('GET /work', { kind: K.CLIENT }, api.trace.setSpan(api.ROOT_CONTEXT, front));
  const headers = {};
  api.propagation.inject(api.trace.setSpan(api.ROOT_CONTEXT, call), headers);
  const reply = JSON.parse(await get(backend + '/work', headers));
  call.end();
  front.end();
  await provider.forceFlush();
  await provider.shutdown();
  console.log(JSON.stringify({ trace_id: front.spanContext().traceId, front: front.spanContext().spanId,
                               call: call.spanContext().spanId, reply }));
}

main().catch((e) => { console.error(e); process.exit(1); });
