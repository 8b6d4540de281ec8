"""The ``citystack`` command: its commands (commands.py), and what only the
command line needs: running an analysis to a file (analyze.py, export.py,
render.py) and the gunicorn server (server.py)."""

from .commands import main  # noqa: F401
