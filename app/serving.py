"""The gunicorn worker `transom serve` runs: gunicorn's threaded worker, stopping without resetting a
connection the kernel has already let in (docs/OPERATIONS.md, "Stopping and restarting").

On SIGTERM gunicorn's worker stops polling its listening socket and finishes the requests in flight, but
keeps the socket open until it exits. Meanwhile the kernel keeps completing handshakes into the socket's
backlog, and when the socket finally closes those connections are reset: a client that had already sent a
lease request sees "connection reset" and cannot tell whether it was handled. This worker, the moment it
stops accepting, takes in what is already waiting (answered like any request in flight, with
``Connection: close``) and closes its copy of the socket; once every worker has, a new client gets
"connection refused", which it (or a load balancer) can safely retry elsewhere.
"""

from __future__ import annotations

import select
from typing import Any

from gunicorn.workers.gthread import ThreadWorker


class DrainingThreadWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn ships no type hints
    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:  # stopping (not merely at its connection limit)
            for listener in self.sockets:
                self._take_waiting(listener)
                listener.close()

    def _take_waiting(self, listener: Any) -> None:
        """Accept every connection waiting in ``listener``'s backlog; each is handled as in flight."""
        while select.select([listener], [], [], 0)[0]:
            self.accept(listener)
