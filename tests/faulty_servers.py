"""Misbehaving HTTP servers on 127.0.0.1 for download tests: one hangs up mid-body, one stalls."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROMISED, SENT = 10_000, 1_000  # Content-Length announced, bytes actually sent


def _handler(stall: threading.Event | None, started: threading.Event) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            if self.path.endswith("MD5SUMS"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(PROMISED))
            self.end_headers()
            self.wfile.write(b"\0" * SENT)
            self.wfile.flush()
            started.set()
            if stall is not None:
                stall.wait(60)  # hold the connection open, sending nothing
            self.close_connection = True

    return Handler


@contextmanager
def bad_server(stall: bool = False) -> Iterator[tuple[str, threading.Event]]:
    """Serve on a free port of 127.0.0.1; yield (base URL, event set once part of a body was sent)."""
    release, started = threading.Event(), threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(release if stall else None, started))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", started
    finally:
        release.set()
        server.shutdown()
        server.server_close()
