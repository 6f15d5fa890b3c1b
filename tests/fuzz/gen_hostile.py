"""Write the hostile corpus inputs (hostile_*.json, hostile.pb) into CORPUS_DIR.

Times out of range (INT64_MAX, 2^64-1, negative strings, numbers beyond
int64), lone surrogates and \\u0000 in strings and keys, numbers a strict
reader refuses, nesting deeper than the decoders keep. tests/unit/test_collector.c
and tests/e2e/test_collector.py check what the decoders make of them.

usage: python3 tests/fuzz/gen_hostile.py tests/fuzz/corpus
"""
import json, struct, sys
root = sys.argv[1]
TID = "4bf92f3577b34da6a3ce929d0e0e4736"
# ---- OTLP JSON: times
def osp(sid, start, end, name):
    return {"traceId": TID, "spanId": sid, "name": name, "startTimeUnixNano": start, "endTimeUnixNano": end}
spans = [
    osp("0000000000000001", "1700000000000000000", "1700000001000000000", "good"),
    osp("0000000000000002", "18446744073709551615", "18446744073709551615", "u64max"),
    osp("0000000000000003", "-9223372036854775808", "1", "negative"),
    osp("0000000000000004", "1700000000000000000", "99999999999999999999999", "end beyond u64"),
    osp("0000000000000005", "9223372036854776000", "9223372036854776000", "beyond int64 ns"),
    osp("0000000000000006", "17e17", "1.7e18", "number forms"),
    osp("0000000000000007", "12abc", "1", "junk"),
]
spans[5]["startTimeUnixNano"] = 1.7e18; spans[5]["endTimeUnixNano"] = 1.7000000001e18
body = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "t"}}]},
                           "scopeSpans": [{"spans": spans}]}]}
open(root + "/otlp_json/hostile_times.json", "w").write(json.dumps(body))
# ---- OTLP JSON: attributes (raw text: lone surrogates cannot go through json.dumps)
deep = '{"stringValue":"bottom"}'
for _ in range(40):
    deep = '{"kvlistValue":{"values":[{"key":"d","value":%s}]}}' % deep
attrs = ('[{"key":"keep","value":{"stringValue":"yes"}},'
         '{"key":"lone","value":{"stringValue":"a\\ud800b"}},'
         '{"key":"low\\udc00","value":{"stringValue":"\\u0000x"}},'
         '{"key":"pair","value":{"stringValue":"\\ud83d\\ude00"}},'
         '{"key":"esc","value":{"stringValue":"\\\\ud800"}},'
         '{"key":"bigint","value":{"intValue":"99999999999999999999"}},'
         '{"key":"bigdbl","value":{"doubleValue":1e400}},'
         '{"key":"deep","value":%s},'
         '{"key":"last","value":{"intValue":7}}]') % deep
text = ('{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"%s","spanId":"0000000000000001","name":"attrs",'
        '"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000001000000000","attributes":%s}]}]}]}'
        % (TID, attrs))
open(root + "/otlp_json/hostile_attrs.json", "w").write(text)
# ---- Zipkin
zdeep = '"bottom"'
for _ in range(100):
    zdeep = '[%s]' % zdeep
def zsp(sid, ts, du, extra=""):
    return ('{"traceId":"%s","id":"%s","name":"n%s","timestamp":%s,"duration":%s,'
            '"localEndpoint":{"serviceName":"z"}%s}' % (TID, sid, sid[-1], ts, du, extra))
z = "[" + ",".join([
    zsp("0000000000000001", "1700000000000000", "20000",
        ',"tags":{"keep":"yes","lone":"a\\ud800b","nul":"\\u0000","big":99999999999999999999,"dbl":1e400,"n":3,"error":{"x":1}},'
        '"annotations":[{"timestamp":1700000000000100,"value":"w\\udfff"},{"timestamp":1,"value":%s}]' % zdeep),
    zsp("0000000000000002", "9223372036854775807", "9223372036854775807"),
    zsp("0000000000000003", '"-9223372036854775808"', "1"),
    zsp("0000000000000004", "99999999999999999999", "1"),
    zsp("0000000000000005", "1e400", "1"),
    zsp("0000000000000006", "9223372036854775", "1"),
    zsp("0000000000000007", '"1700000000000000"', "-5"),
    zsp("0000000000000008", '"soon"', "1"),
]) + "]"
open(root + "/zipkin/hostile.json", "w").write(z)
# ---- OTLP protobuf: start 2^64-1
def varint(n):
    out = b""
    while True:
        b = n & 0x7f; n >>= 7
        if n: out += bytes([b | 0x80])
        else: return out + bytes([b])
def fld(num, wt, payload):
    key = varint(num << 3 | wt)
    if wt == 2: return key + varint(len(payload)) + payload
    return key + payload
def pspan(sid, start, end, name, attrs=b""):
    return (fld(1, 2, bytes.fromhex(TID)) + fld(2, 2, struct.pack(">Q", sid)) + fld(5, 2, name.encode())
            + fld(7, 1, struct.pack("<Q", start)) + fld(8, 1, struct.pack("<Q", end)) + attrs)
def kv(k, anyv): return fld(9, 2, fld(1, 2, k) + fld(2, 2, anyv))
attrs = (kv(b"keep", fld(1, 2, b"yes")) + kv(b"nan", fld(4, 1, struct.pack("<d", float("nan"))))
         + kv(b"inf", fld(4, 1, struct.pack("<d", float("-inf")))) + kv(b"bad\xff", fld(1, 2, b"x\xc3")))
ss = (fld(2, 2, pspan(1, 1700000000000000000, 1700000001000000000, "good", attrs))
      + fld(2, 2, pspan(2, 2**64 - 1, 2**64 - 1, "u64max"))
      + fld(2, 2, pspan(3, 1700000000000000000, 2**63, "end beyond int64")))
open(root + "/otlp_proto/hostile.pb", "wb").write(fld(1, 2, fld(2, 2, ss)))
