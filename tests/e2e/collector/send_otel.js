// Two "nodes" (services frontend on node-a and backend on node-b) each with
// its own OpenTelemetry JS SDK TracerProvider and OTLP/HTTP exporter (JSON or
// protobuf) send one trace to a sonde collector. node-b's clock runs
// OFFSET_MS ahead. Prints {"trace_id", "spans": {name: span_id}} on stdout.
// usage: node send_otel.js URL json|proto OFFSET_MS [TOKEN]
'use strict';
const api = require('@opentelemetry/api');
const { BasicTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { Resource } = require('@opentelemetry/resources');

const [url, encoding, offsetArg, token] = process.argv.slice(2);
const offset = Number(offsetArg || 0);
const { OTLPTraceExporter } = require(encoding === 'proto'
  ? '@opentelemetry/exporter-trace-otlp-proto'
  : '@opentelemetry/exporter-trace-otlp-http');

function provider(service, host) {
  const exporter = new OTLPTraceExporter({
    url: url + '/v1/traces',
    headers: token ? { Authorization: 'Bearer ' + token } : {},
  });
  const p = new BasicTracerProvider({
    resource: new Resource({ 'service.name': service, 'host.name': host }),
  });
  p.addSpanProcessor(new SimpleSpanProcessor(exporter));
  return p;
}

async function main() {
  const pa = provider('frontend', 'node-a');
  const pb = provider('backend', 'node-b');
  const ta = pa.getTracer('e2e'), tb = pb.getTracer('e2e');
  const t0 = Date.now() - 1000;
  const K = api.SpanKind;
  const root = ta.startSpan('GET /checkout', { kind: K.SERVER, startTime: t0, attributes: { 'http.method': 'GET', 'http.status_code': 200 } });
  const rctx = api.trace.setSpan(api.ROOT_CONTEXT, root);
  const client = ta.startSpan('POST /cart', { kind: K.CLIENT, startTime: t0 + 10 }, rctx);
  const cctx = api.trace.setSpan(api.ROOT_CONTEXT, client);
  const server = tb.startSpan('handle /cart', { kind: K.SERVER, startTime: t0 + 20 + offset }, cctx);
  const sctx = api.trace.setSpan(api.ROOT_CONTEXT, server);
  const db = tb.startSpan('SELECT cart', { kind: K.CLIENT, startTime: t0 + 30 + offset }, sctx);
  db.setStatus({ code: api.SpanStatusCode.ERROR, message: 'deadlock' });
  db.end(t0 + 40 + offset);
  server.end(t0 + 80 + offset);
  client.end(t0 + 90);
  root.end(t0 + 100);
  await pa.forceFlush();
  await pb.forceFlush();
  await pa.shutdown();
  await pb.shutdown();
  const ids = {};
  for (const s of [root, client, server, db]) ids[s.name] = s.spanContext().spanId;
  console.log(JSON.stringify({ trace_id: root.spanContext().traceId, spans: ids, t0_us: t0 * 1000 }));
}

main().catch((e) => { console.error(e); process.exit(1); });
