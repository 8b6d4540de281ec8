"""`citystack serve` without the built-in analysis modules that do not import yet, so that
the features API can be measured while they are being written. Used by common.Server
only in that case; the results say so."""

import importlib
import sys

from citystack.analyses import registry

importable = []
for name in registry.BUILTIN:
    try:
        importlib.import_module(f"{registry.__package__}.{name}")
        importable.append(name)
    except Exception as exc:  # noqa: BLE001
        print(f"serve_stub: analysis {name} left out ({type(exc).__name__}: {exc})", file=sys.stderr)
registry.BUILTIN = tuple(importable)  # what registry.load() imports in each worker

from citystack.cli import main  # noqa: E402

main()
