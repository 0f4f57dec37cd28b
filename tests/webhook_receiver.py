"""A webhook receiver on 127.0.0.1 for the tests: ``http.server`` in a thread, answering from a script.

Each delivery (by its ``X-Superintendent-Delivery`` header) gets the answers
in ``answers`` in turn (e.g. ``[500, 500, 200]``), then the last one again;
every request is kept with its headers and body. Shared by test_webhooks.py
and test_webhooks_browser.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def delivery(self) -> str:
        return self.headers["X-Superintendent-Delivery"]


@dataclass
class Receiver:
    url: str
    answers: list[int]
    delay: float = 0.0
    requests: list[Request] = field(default_factory=list)
    _tries: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            key = (headers.get("X-Superintendent-Delivery"), headers.get("X-Superintendent-Event"))
            n = self._tries[key]
            self._tries[key] += 1
            code = self.answers[min(n, len(self.answers) - 1)]
            self.requests.append(Request(headers, body, code))
        return code

    def accepted(self) -> list[Request]:
        """The requests answered 2xx, in arrival order."""
        with self._lock:
            return [r for r in self.requests if 200 <= r.answered < 300]

    def accepted_per_delivery(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for r in self.accepted():
            counts[r.delivery] += 1
        return dict(counts)


def signature_is_valid(secret: str, request: Request, tolerance: float = 300) -> bool:
    """The check a receiver makes, written here from the documented scheme (not with the package's own helper)."""
    parts = dict(p.split("=", 1) for p in request.headers["X-Superintendent-Signature"].split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) <= tolerance


@contextmanager
def receiving(answers: list[int] | None = None, delay: float = 0.0) -> Iterator[Receiver]:
    """A receiver answering ``answers`` per delivery (default: 200 every time), on a free port of 127.0.0.1."""
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            code = receiver.answer(dict(self.headers.items()), body)
            try:
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender gave up waiting (a timeout test): nobody reads the answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook", answers or [200], delay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
