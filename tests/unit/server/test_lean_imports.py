"""A server without JetStream never loads the JetStream package (its modules cost ~1.3 MiB of
RSS in every core-NATS process and embedded test server); with JetStream it does. Neither
loads OpenSSL's hashing (hashlib, hmac, secrets: ~1 MiB) or shutil (bz2, lzma) until a
password, a certificate, an overlong name or a deletion needs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# One client's visit: CONNECT, a PUB, PING, and the PONG back ({{ }}: str.format escapes)
VISIT = """
        r, w = await asyncio.open_connection("127.0.0.1", srv.port)
        await r.readline()  # INFO
        w.write(b'CONNECT {{"verbose":false}}\\r\\nPUB a 1\\r\\nx\\r\\nPING\\r\\n')
        line = await r.readline()
        assert line == b"PONG\\r\\n", line
        w.close()
"""

# The embedded server (serve()), as tests and apps start it
SCRIPT = """
import asyncio, sys
import pyjetstream
import pyjetstream.cli.main, pyjetstream.cli.server_cmd

async def main():
    async with pyjetstream.serve(jetstream={js}) as srv:
""" + VISIT + """
    print(",".join(sorted(m for m in sys.modules if m.startswith("pyjetstream.jetstream"))))

asyncio.run(main())
"""

# What `pyjetstream server` runs: the Server class, as the command builds it (serve() itself
# makes a temporary directory, and tempfile loads shutil)
SERVER_SCRIPT = """
import asyncio, sys
import pyjetstream.cli.main, pyjetstream.cli.server_cmd
from pyjetstream.server.options import JetStreamOptions, ServerOptions
from pyjetstream.server.server import Server

async def main():
    srv = Server(ServerOptions(host="127.0.0.1", port=0,
                               jetstream=JetStreamOptions(enabled={js}, store_dir={store!r})))
    await srv.start()
    try:
""" + VISIT + """
    finally:
        await srv.shutdown()
    print(",".join(sorted(m for m in sys.modules if m in {heavy!r})))

asyncio.run(main())
"""

HEAVY = {"hashlib", "_hashlib", "hmac", "secrets", "shutil", "bz2", "lzma"}


def _jetstream_modules(js: bool) -> list[str]:
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(js=js)], capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip()
    return [m for m in out.split(",") if m]


def _heavy_modules(js: bool, store: Path) -> list[str]:
    script = SERVER_SCRIPT.format(js=js, store=str(store), heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_core_server_loads_no_jetstream_module() -> None:
    assert _jetstream_modules(False) == []


def test_jetstream_server_loads_its_package() -> None:
    assert "pyjetstream.jetstream.manager" in _jetstream_modules(True)


@pytest.mark.parametrize("js", [False, True])
def test_the_server_loads_no_hashing_or_shutil_before_it_needs_them(tmp_path: Path, js: bool) -> None:
    assert _heavy_modules(js, tmp_path / "js") == []
