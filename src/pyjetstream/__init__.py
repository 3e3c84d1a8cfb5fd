"""pyjetstream: a NATS server with JetStream, Kyma-style eventing and an operator's CLI.

As a library: `async with pyjetstream.serve(jetstream=True) as srv:` runs a server in this
process (`pyjetstream.serve_in_thread` for synchronous code); `pyjetstream.eventing.serve`
adds the publisher proxy and dispatcher. Imported lazily, so `import pyjetstream` (and the
command line's start-up) stays cheap.
"""

from __future__ import annotations

import logging
from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "serve", "serve_in_thread"]

# A library stays quiet unless the application configures logging: no "No handlers" warnings
# and nothing on stderr from an embedded server.
logging.getLogger("pyjetstream").addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    if name in ("serve", "serve_in_thread"):
        from pyjetstream import embed

        return getattr(embed, name)
    raise AttributeError(f"module 'pyjetstream' has no attribute {name!r}")
