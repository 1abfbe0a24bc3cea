"""The configuration a lease decision reads, cached per process and kept exact by a generation counter.

Every change to an issuer, secret, window, freeze or policy bumps one counter in the same transaction
(``generation``). A request reads the counter (one small query) and reuses the process's snapshot while it
is unchanged, so the hot path neither re-reads five tables nor rebuilds the calendar's caches; replicas see
each other's changes at the very next request.
"""
