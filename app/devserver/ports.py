"""Free loopback ports for the processes `transom dev` starts."""

from __future__ import annotations

import socket


def port_is_free(port: int) -> bool:
    """Whether a server could listen on it now (servers set SO_REUSEADDR, so TIME_WAIT does not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair(prefer: int | None = None) -> int:
    """``prefer`` when it and the next port are free (OpenBao dev mode listens on p and p+1), else another
    such pair."""
    if prefer is not None and port_is_free(prefer) and port_is_free(prefer + 1):
        return prefer
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port < 65535 and port_is_free(port + 1):
            return port
    raise RuntimeError("no free pair of loopback ports")
