"""Every table, imported in one place so Alembic's autogenerate and ``check`` see the whole schema."""

from app.approvals.models import ApprovalRequest, ApprovalVote
from app.audit.models import AuditEvent, LedgerCheckpoint, LedgerHash, LedgerLeaf, LedgerPending
from app.config_snapshot.models import ConfigGeneration
from app.db import Base
from app.issuers.models import Issuer
from app.leases.models import Lease, LeaseStatus, SeenToken
from app.notifications.models import Notification
from app.policies.models import Policy
from app.secrets.models import Secret
from app.tokens.models import ApiToken
from app.windows.models import Freeze, Window

__all__ = [
    "ApiToken",
    "ApprovalRequest",
    "ApprovalVote",
    "AuditEvent",
    "Base",
    "ConfigGeneration",
    "Freeze",
    "Issuer",
    "Lease",
    "LeaseStatus",
    "LedgerCheckpoint",
    "LedgerHash",
    "LedgerLeaf",
    "LedgerPending",
    "Notification",
    "Policy",
    "Secret",
    "SeenToken",
    "Window",
]
