"""`citystack serve`, with built-in analysis modules that do not import yet replaced by
empty modules, so that the features API can be measured while they are being written.
Used by common.Server only in that case; the results say so."""

import importlib
import sys
import types

from citystack.analyses.registry import BUILTIN

for name in BUILTIN:
    full = f"citystack.analyses.{name}"
    try:
        importlib.import_module(full)
    except Exception as exc:  # noqa: BLE001
        print(f"serve_stub: {full} replaced by an empty module ({type(exc).__name__}: {exc})", file=sys.stderr)
        sys.modules[full] = types.ModuleType(full)

from citystack.cli import main  # noqa: E402

main()
