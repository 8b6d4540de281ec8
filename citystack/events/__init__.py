"""Events: progress of long work (progress.py), status lines fanned out to the
2015 ``/eventSource/`` streams (broadcast.py, and pgnotify.py across processes
through PostgreSQL LISTEN/NOTIFY), and their Server-Sent Events framing (sse.py)."""
