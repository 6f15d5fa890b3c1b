// zipkin-js with zipkin-transport-http: a client on node 10.0.0.1 and the
// server half of the same (shared) span id on node 10.0.0.2 whose clock runs
// OFFSET_MS ahead, plus a local child span on the server. Each node has its
// own recorder and HTTP logger, as two processes would.
// usage: node send_zipkin.js BASE_URL OFFSET_MS
'use strict';
const { Tracer, BatchRecorder, ExplicitContext, jsonEncoder, Annotation, InetAddress, TraceId, option } = require('zipkin');
const { HttpLogger } = require('zipkin-transport-http');

const [base, offsetArg] = process.argv.slice(2);
const offsetUs = Number(offsetArg || 0) * 1000;

function node(service) {
  const logger = new HttpLogger({ endpoint: base + '/api/v2/spans', jsonEncoder: jsonEncoder.JSON_V2, httpInterval: 50 });
  const tracer = new Tracer({ ctxImpl: new ExplicitContext(), recorder: new BatchRecorder({ logger }), localServiceName: service, traceId128Bit: true });
  return { logger, tracer };
}

async function main() {
  const a = node('zfront'), b = node('zback');
  const t0 = (Date.now() - 1000) * 1000;
  const id = a.tracer.createRootId();
  a.tracer.letId(id, () => {
    a.tracer.recordServiceName('zfront');
    a.tracer.recordRpc('get /inventory');
    a.tracer.recordAnnotation(new Annotation.LocalAddr({ host: new InetAddress('10.0.0.1') }));
    a.tracer.recordAnnotation(new Annotation.ClientSend(), t0);
    a.tracer.recordBinary('http.path', '/inventory');
    a.tracer.recordAnnotation(new Annotation.ClientRecv(), t0 + 100000);
  });
  const joined = b.tracer.join(new TraceId({ traceId: id.traceId, parentId: id._parentId, spanId: id.spanId, sampled: new option.Some(true) }));
  let child;
  b.tracer.letId(joined, () => {
    b.tracer.recordServiceName('zback');
    b.tracer.recordRpc('get /inventory');
    b.tracer.recordAnnotation(new Annotation.LocalAddr({ host: new InetAddress('10.0.0.2') }));
    b.tracer.recordAnnotation(new Annotation.ServerRecv(), t0 + 20000 + offsetUs);
    child = b.tracer.createChildId();
    b.tracer.recordAnnotation(new Annotation.ServerSend(), t0 + 80000 + offsetUs);
  });
  b.tracer.letId(child, () => {
    b.tracer.recordServiceName('zback');
    b.tracer.recordAnnotation(new Annotation.LocalAddr({ host: new InetAddress('10.0.0.2') }));
    b.tracer.recordAnnotation(new Annotation.LocalOperationStart('load stock'), t0 + 30000 + offsetUs);
    b.tracer.recordAnnotation(new Annotation.LocalOperationStop(), t0 + 50000 + offsetUs);
  });
  await Promise.all([a.logger.processQueue(fetch), b.logger.processQueue(fetch)]);
  await new Promise((r) => setTimeout(r, 200));
  console.log(JSON.stringify({ trace_id: id.traceId, span_id: id.spanId, child_id: child.spanId, t0_us: t0 }));
}

main().catch((e) => { console.error(e); process.exit(1); });
