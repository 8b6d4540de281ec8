"""Analyses over the points in view; see :mod:`.registry` for how to add one."""
