"""A sink for OTLP/HTTP exports: answers every POST with an empty success and forgets the
body. For measuring what tracing costs the processes that export (``python -m
bench.otlp_sink PORT``, then ``OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:PORT``)."""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Sink(BaseHTTPRequestHandler):
    """Reads the request body and answers 200 (an empty ExportTraceServiceResponse)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 4318
    ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()
