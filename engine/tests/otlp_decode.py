"""Decodes one OTLP/HTTP ExportTraceServiceRequest (protobuf, on stdin) with the official
Python definitions (the `opentelemetry-proto` package) and prints a JSON summary:
{"spans": N, "resource": {attr: value}, "first": {...}}. Used by engine/tests/observability.rs
as a decoder independent of the Rust crate that encoded the spans."""
import json
import sys

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

req = ExportTraceServiceRequest()
req.ParseFromString(sys.stdin.buffer.read())
spans = 0
resource = {}
first = None
for rs in req.resource_spans:
    for a in rs.resource.attributes:
        resource[a.key] = a.value.string_value
    for ss in rs.scope_spans:
        for sp in ss.spans:
            spans += 1
            if first is None:
                first = {
                    "name": sp.name,
                    "kind": sp.kind,
                    "traceId": sp.trace_id.hex(),
                    "spanId": sp.span_id.hex(),
                    "start": sp.start_time_unix_nano,
                    "end": sp.end_time_unix_nano,
                    "status": sp.status.code,
                    "attributes": {
                        a.key: (a.value.string_value or a.value.int_value)
                        for a in sp.attributes
                    },
                }
json.dump({"spans": spans, "resource": resource, "first": first}, sys.stdout)
