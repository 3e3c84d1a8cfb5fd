"""Fixtures for the console tests: a real NATS server process, consoles started in-process on
free ports (each with its own nats-py connection, as `pyjetstream console` runs), and an HTTP
client that keeps cookies for 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from eventing.conftest import fast_config, start_nats  # noqa: F401  (fast_config used by tests)
from servers import have_nats_server

from pyjetstream.console.server import Console
from pyjetstream.console.settings import ConsoleAuth, ConsoleSettings
from pyjetstream.eventing.testing import FlakySink

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def server_kind() -> str:
    """The reference nats-server when installed (the console must work against it), else ours."""
    return "nats-server" if have_nats_server() else "pyjetstream"


@pytest.fixture
def nats_server(tmp_path):
    with start_nats(server_kind(), tmp_path) as proc:
        yield proc


@pytest.fixture
async def sink() -> AsyncIterator[FlakySink]:
    s = await FlakySink().start()
    yield s
    await s.stop()


@pytest.fixture
async def make_console(nats_server) -> AsyncIterator[Callable[..., Any]]:
    started: list[Console] = []

    async def factory(token: str | None = None, connect_options: dict[str, Any] | None = None,
                      url: str | None = None, **settings: Any) -> Console:
        options = connect_options or {}
        cfg = ConsoleSettings(port=0, auth=ConsoleAuth.from_options(token, options), interval=0.2,
                              timeout=3.0, **settings)
        console = await Console.connect(cfg, [url or nats_server.url], options)
        await console.start()
        started.append(console)
        return console

    yield factory
    for console in started:
        await console.stop()


class Browserless:
    """An HTTP client for one console: cookies kept, CSRF token read from the last page."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def get(self, path: str, **kw: Any) -> tuple[int, str, Any]:
        headers = {"Accept": "text/html", **kw.pop("headers", {})}
        async with self.session.get(self.base + path, headers=headers, allow_redirects=False, **kw) as r:
            text = await r.text()
            found = CSRF.search(text)
            if found:
                self.csrf = found.group(1)
            return r.status, text, r.headers

    async def post(self, path: str, form: dict[str, str], csrf: bool = True, **kw: Any) -> tuple[int, str, Any]:
        data = dict(form)
        if csrf:
            data["csrf_token"] = self.csrf
        async with self.session.post(self.base + path, data=data, allow_redirects=False, **kw) as r:
            return r.status, await r.text(), r.headers

    async def close(self) -> None:
        await self.session.close()


@pytest.fixture
async def browserless() -> AsyncIterator[Callable[[Console], Browserless]]:
    clients: list[Browserless] = []

    def factory(console: Console) -> Browserless:
        client = Browserless(console.url)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()
