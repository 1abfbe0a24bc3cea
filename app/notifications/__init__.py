"""Notifications to people (the approvals webhook): written to an outbox, delivered by the worker."""
