"""Approvals and break-glass: requests people approve before a lease is granted (docs/API.md)."""
