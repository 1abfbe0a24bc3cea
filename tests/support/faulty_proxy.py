"""A loopback TCP proxy that can make the service behind it slow, stuck or rude, for fault-injection tests.

``FaultyProxy(upstream_port)`` listens on a free port of 127.0.0.1 and forwards every connection to the
upstream on 127.0.0.1, byte for byte, in both directions (HTTP keep-alive included: it never parses HTTP). Its
mode applies to every request it sees from then on, on new and on already open connections alike:

- :meth:`forward` — pass everything through at once (the default);
- :meth:`delay` — hold each request for ``seconds`` before passing it on (``where="request"``: upstream has
  not seen it when the client gives up), or pass it on at once and hold the answer (``where="response"``:
  upstream has done the work, the client never hears of it);
- :meth:`hold` — hold each request until :meth:`release` (or a mode change); :meth:`wait_held` returns once
  that many requests are waiting, so a test can act at a known point inside a client's call;
- :meth:`reset` — answer each request by resetting the connection (TCP RST), without passing it on.

Every wait is bounded and cut short by a mode change and by :meth:`close`, so no thread outlives a test by
more than a moment. Only loopback addresses are used.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import Literal

Where = Literal["request", "response"]
_CHUNK = 64 * 1024
_MAX_HOLD = 30.0  # seconds; a safety net for holds that a test forgets to release


def _rst(sock: socket.socket) -> None:
    """Close with a TCP reset instead of an orderly FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class FaultyProxy:
    def __init__(self, upstream_port: int, *, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._mode = "forward"
        self._seconds = 0.0
        self._where: Where = "request"
        self._generation = 0  # bumped by every mode change: ends the waits of the previous mode
        self._held = 0
        self._seen = 0
        self._closed = False
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.addr = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._accept, name="faulty-proxy", daemon=True)
        self._thread.start()

    # -- modes --------------------------------------------------------------------------------------------

    def forward(self) -> None:
        self._set("forward")

    def delay(self, seconds: float, *, where: Where = "request") -> None:
        self._set("delay", seconds, where)

    def hold(self) -> None:
        self._set("hold", _MAX_HOLD)

    def release(self) -> None:
        """Let held requests through (the mode becomes ``forward``)."""
        self.forward()

    def reset(self) -> None:
        self._set("reset")

    def wait_held(self, count: int = 1, timeout: float = 10.0) -> None:
        """Return once ``count`` requests are being held; AssertionError after ``timeout`` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._held >= count, timeout):
                raise AssertionError(f"no {count} request(s) held by the proxy after {timeout}s")

    @property
    def requests_seen(self) -> int:
        """How many request chunks (roughly: requests) clients have sent through the proxy."""
        with self._lock:
            return self._seen

    def _set(self, mode: str, seconds: float = 0.0, where: Where = "request") -> None:
        with self._changed:
            self._mode, self._seconds, self._where = mode, seconds, where
            self._generation += 1
            self._changed.notify_all()

    # -- lifecycle ----------------------------------------------------------------------------------------

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._generation += 1
            self._changed.notify_all()
            sockets, self._sockets = set(self._sockets), set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() that close() alone would not
        with contextlib.suppress(OSError):
            self._listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultyProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(
                target=self._serve, args=(client,), name="faulty-proxy-conn", daemon=True
            ).start()

    def _track(self, sock: socket.socket) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._sockets.add(sock)
            return True

    def _serve(self, client: socket.socket) -> None:
        if not self._track(client):
            client.close()
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _rst(client)  # nothing listens upstream: the client sees its connection reset
            return
        upstream.settimeout(None)
        if not self._track(upstream):
            upstream.close()
            client.close()
            return
        answer_pending = threading.Event()  # set when a request went upstream and its answer is due
        threading.Thread(
            target=self._pump_answers, args=(upstream, client, answer_pending), daemon=True
        ).start()
        self._pump_requests(client, upstream, answer_pending)

    def _pump_requests(
        self, client: socket.socket, upstream: socket.socket, pending: threading.Event
    ) -> None:
        try:
            while chunk := client.recv(_CHUNK):
                with self._lock:
                    self._seen += 1
                    mode, seconds, where = self._mode, self._seconds, self._where
                if mode == "reset":
                    _rst(client)
                    _rst(upstream)
                    return
                if mode == "hold" or (mode == "delay" and where == "request"):
                    self._wait(seconds, counted=mode == "hold")
                if mode == "delay" and where == "response":
                    pending.set()
                upstream.sendall(chunk)
        except OSError:
            pass
        self._shut(client, upstream)

    def _pump_answers(self, upstream: socket.socket, client: socket.socket, pending: threading.Event) -> None:
        try:
            while chunk := upstream.recv(_CHUNK):
                if pending.is_set():
                    pending.clear()
                    with self._lock:
                        seconds = self._seconds if self._mode == "delay" else 0.0
                    self._wait(seconds, counted=False)
                client.sendall(chunk)
        except OSError:
            pass
        self._shut(client, upstream)

    def _wait(self, seconds: float, *, counted: bool) -> None:
        """Sleep up to ``seconds``, cut short when the mode changes or the proxy closes."""
        with self._changed:
            generation = self._generation
            if counted:
                self._held += 1
                self._changed.notify_all()
            try:
                self._changed.wait_for(lambda: self._generation != generation, timeout=seconds)
            finally:
                if counted:
                    self._held -= 1

    def _shut(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:
                self._sockets.discard(sock)
