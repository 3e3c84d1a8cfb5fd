"""A server without JetStream never loads the JetStream package (its modules cost ~1.3 MiB of
RSS in every core-NATS process and embedded test server); with JetStream it does."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import asyncio, sys
import pyjetstream
import pyjetstream.cli.main, pyjetstream.cli.server_cmd

async def main():
    async with pyjetstream.serve(jetstream={js}) as srv:
        r, w = await asyncio.open_connection("127.0.0.1", srv.port)
        await r.readline()  # INFO
        w.write(b'CONNECT {{"verbose":false}}\\r\\nPING\\r\\n')
        line = await r.readline()
        assert line == b"PONG\\r\\n", line
        w.close()
    print(",".join(sorted(m for m in sys.modules if m.startswith("pyjetstream.jetstream"))))

asyncio.run(main())
"""


def _jetstream_modules(js: bool) -> list[str]:
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(js=js)], capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip()
    return [m for m in out.split(",") if m]


def test_core_server_loads_no_jetstream_module() -> None:
    assert _jetstream_modules(False) == []


def test_jetstream_server_loads_its_package() -> None:
    assert "pyjetstream.jetstream.manager" in _jetstream_modules(True)
