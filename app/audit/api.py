from __future__ import annotations

from flask_smorest import Blueprint

bp = Blueprint("audit", __name__, url_prefix="/v1/audit", description="The audit ledger (auditor, admin)")
