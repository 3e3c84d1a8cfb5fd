"""What every HTTP server of ours (monitoring, publisher proxy, demo sink, console) adds to
aiohttp: the handling of a request's Expect header, given to each route.

Owns that handler, the helper that adds routes with it and the fallback route. Must not hold any app, route or
state of its own; the servers keep their routes.

aiohttp's default Expect handler puts the header's value into its 417 text, and a value that is
not UTF-8 (`Expect: \\x80`, kept as a surrogate) cannot be encoded, so it answered 500. aiohttp
calls a route's expect handler before any middleware, so this cannot be a middleware. A request
that matches no route would still get aiohttp's default handler (its router has no public hook
for that), so every app ends with `add_fallback`: a last route for any method and path, with
our handler, answering 404 or 405 as aiohttp's router would (docs/design.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import hdrs, web
from aiohttp.http import HttpVersion11
from yarl import URL


async def expect_handler(request: web.Request) -> None:
    """aiohttp's default Expect handling, minus its 500: 100-continue as there; any other
    expectation is a 417 whose text shows the value escaped."""
    expect = request.headers.get(hdrs.EXPECT, "")
    if request.version != HttpVersion11:
        return  # HTTP/1.0 has no Expect; the request goes on as aiohttp's default lets it
    if expect.lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the 100 is not part of the answer's size
        return
    shown = expect[:100].encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
    raise web.HTTPExpectationFailed(text=f"unsupported Expect header \"{shown}\"; only 100-continue is supported\n")


def add_routes(router: web.UrlDispatcher, routes: Iterable[tuple[str, str, Any]]) -> None:
    """Routes (method, path, handler) with `expect_handler`; GET also answers HEAD, as add_get."""
    for method, path, handler in routes:
        if method == "GET":
            router.add_get(path, handler, expect_handler=expect_handler)
        else:
            router.add_route(method, path, handler, expect_handler=expect_handler)


UNMATCHED = "pyjetstream-unmatched"  # the fallback route's name (metrics label requests by it)


async def _unmatched(request: web.Request) -> web.StreamResponse:
    """What aiohttp's router answers when no route takes a request: 405 with Allow when some
    resource has the path for other methods, else 404."""
    own = request.match_info.route.resource
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is own:
            continue
        match, methods = await resource.resolve(request)
        if match is None:
            allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


class _AnyTarget(web.Resource):
    """A resource every request target matches: paths, and `*` (OPTIONS) or `host:port`
    (CONNECT), which no path pattern of aiohttp's matches."""

    @property
    def canonical(self) -> str:
        return "/"  # indexed under "/": aiohttp tries it after every more specific path

    def url_for(self, **kwargs: str) -> URL:
        return URL("/")

    def add_prefix(self, prefix: str) -> None:
        return None

    def get_info(self) -> Any:
        return {"path": "*"}

    def raw_match(self, path: str) -> bool:
        return False  # never merged with a resource added later for some path

    def _match(self, path: str) -> dict[str, str] | None:
        return {}


def add_fallback(router: web.UrlDispatcher) -> None:
    """The route for requests no other route takes; added after all others (aiohttp tries
    the resources of one path prefix in the order they were added)."""
    resource = _AnyTarget(name=UNMATCHED)
    router.register_resource(resource)
    resource.add_route("*", _unmatched, expect_handler=expect_handler)


def is_unmatched(request: web.Request) -> bool:
    """Did no route of the app's own take the request (aiohttp's 404/405, or the fallback)?"""
    route = request.match_info.route
    return route.resource is None or route.name == UNMATCHED
