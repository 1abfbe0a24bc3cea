"""A transparency log in pure Python: RFC 9162 Merkle trees, C2SP checkpoints and signed notes.

Only the standard library (and `cryptography`, when a signature is checked), so the CI client and
``transom audit verify`` use it without the server's dependencies.
"""
