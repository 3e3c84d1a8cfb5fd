"""Shared test setup for the whole suite; fixtures only, no test logic.

Puts this directory on sys.path so any test can `from servers import start_server, RawClient`
(tests/servers.py: server subprocesses and a raw-socket peer), whatever pytest's import mode.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

# tests/embedding tests pyjetstream's own pytest plugin inside throwaway pytest sessions
pytest_plugins = ["pytester"]
