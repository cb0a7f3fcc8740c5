"""A real OpenAI-compatible chat server on 127.0.0.1, for the tests of the judge, its preflight, the teacher.

    with ChatServer(lambda body: "OK") as server:   # server.url ends in /v1, as a client's base_url does
        ...

POST ``/v1/chat/completions`` is answered with what `answer(body)` returns: a text, sent as a chat
completion of ``body["model"]``, or a `Raw` response (an error status, a body that is not a completion).
Any other path is a 404 (a base_url without its /v1). Every request is recorded in `seen` as (path, body,
headers with lower-case names), in arrival order. A subclass may override `answer` instead of passing one.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


@dataclass(frozen=True)
class Raw:
    """A response sent as it is."""

    status: int
    body: bytes


def completion(content: str, model: str | None) -> bytes:
    """The body vLLM or OpenAI send for one reply."""
    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
    return json.dumps({"id": "c1", "object": "chat.completion", "model": model, "choices": [choice]}).encode()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server: ChatServer = self.server
        with server.lock:
            server.seen.append((self.path, body, {k.lower(): v for k, v in self.headers.items()}))
        if self.path != "/v1/chat/completions":
            return self._send(404, b'{"detail": "Not Found"}')
        out = server.answer(body)
        if isinstance(out, Raw):
            return self._send(out.status, out.body)
        self._send(200, completion(out, body.get("model")))

    def _send(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class ChatServer(ThreadingHTTPServer):
    """Serves from a thread of its own as soon as it is made; `close` (or leaving a ``with``) stops it."""

    daemon_threads = True

    def __init__(self, answer: Callable[[dict], str | Raw] | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self._answer = answer
        self.seen: list[tuple[str, dict, dict]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def answer(self, body: dict) -> str | Raw:
        return self._answer(body)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    @property
    def bodies(self) -> list[dict]:
        return [body for _, body, _ in self.seen]

    def handle_error(self, request, client_address):
        pass  # a client that timed out closes the socket under a handler still answering: that is the point

    def close(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> "ChatServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
