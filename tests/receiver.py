"""A webhook receiver on 127.0.0.1 for tests: records JSON bodies, or fails, hangs or trickles on purpose."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """A webhook receiver: ``mode`` is ok (204), error (500 then ok), hang (never answers), trickle."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.bodies: list[dict[str, Any]] = []
        self.requests = 0
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.requests += 1
                body = self.rfile.read(int(self.headers["content-length"]))
                if receiver.mode == "hang":
                    receiver.release.wait(30)
                    return
                if receiver.mode == "trickle":  # headers, then a byte now and then: no read ever times out
                    self.send_response(200)
                    self.send_header("content-length", "1000")
                    self.end_headers()
                    while not receiver.release.wait(0.1):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                    return
                if receiver.mode == "error" and receiver.requests == 1:
                    self.send_response(500)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                receiver.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.release.set()
            self.server.shutdown()
            self.server.server_close()
