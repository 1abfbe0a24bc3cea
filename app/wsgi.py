"""The WSGI entry point for gunicorn: ``gunicorn -c config/gunicorn.conf.py app.wsgi:app``."""

from app import create_app
from app.cli import no_core_dumps

no_core_dumps()  # also when gunicorn is started on this module directly, not through `transom serve`
app = create_app()
