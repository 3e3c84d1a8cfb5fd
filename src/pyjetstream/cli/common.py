"""Shared plumbing of the client commands: connection, JetStream API calls, errors, formatting.

Owns how every client command connects (from the global -s/--user/--password/--token/--timeout
and --tlsca/--tlscert/--tlskey options), how failures become one-line messages and exit codes,
the human units the nats CLI users know (`318 B`, `5.80s`, `1,234`), the rounded tables and the
key/value column layout.
It must not know any single command: commands live in their own modules and only call in here.
It talks to servers only through nats-py, never through server internals.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pyjetstream.gotime import format_rfc3339 as format_rfc3339  # re-exported for the commands
from pyjetstream.gotime import parse_rfc3339

# Exit codes: 0 success, 1 a failed operation (server unreachable, API error), 2 bad usage
# (argparse's own choice), 130 interrupted. `server check` uses the Nagios codes instead.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Set to an RFC 3339 time or to epoch seconds to freeze "now" for snapshot tests.
NOW_ENV = "PYJETSTREAM_CLI_NOW"


class CLIError(Exception):
    """A failure reported to the user as one line, with an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class APIError(CLIError):
    """An error answer from the JetStream API: `{"code", "err_code", "description"}`."""

    def __init__(self, code: int, err_code: int, description: str, context: str = "") -> None:
        self.code = code
        self.err_code = err_code
        self.description = description
        prefix = f"{context}: " if context else ""
        super().__init__(f"{prefix}{description} (err_code={err_code}, code={code})")


# ---------------------------------------------------------------------------------------------
# Time


class Clock:
    """Wall clock of the CLI; frozen by PYJETSTREAM_CLI_NOW so rendered ages are reproducible."""

    def __init__(self, fixed_ns: int | None = None) -> None:
        self._fixed_ns = fixed_ns

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Clock:
        raw = (env if env is not None else os.environ).get(NOW_ENV)
        if not raw:
            return cls()
        try:
            return cls(int(float(raw) * 1_000_000_000))
        except ValueError:
            return cls(parse_time_ns(raw))

    def now_ns(self) -> int:
        return self._fixed_ns if self._fixed_ns is not None else time.time_ns()


def parse_time_ns(text: str | None) -> int:
    """RFC 3339 (nanosecond precision, as nats-server writes it) to Unix ns; 0 for none or Go's zero time."""
    return parse_rfc3339(text) if text else 0


def format_time(ns: int) -> str:
    """Local time as the nats CLI prints it: `2006-01-02 15:04:05`."""
    return datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")


NEVER = None  # an age that never happened renders as "never"


def _go_small_duration(ns: int) -> str:
    """Go's Duration.String for values under a second (already rounded by the caller)."""
    if ns == 0:
        return "0s"
    if ns < 1_000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return _trim(ns / 1_000) + "µs"
    if ns < 1_000_000_000:
        return _trim(ns / 1_000_000) + "ms"
    return _trim(ns / 1_000_000_000) + "s"


def _trim(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"


def human_duration(ns: int | float | None) -> str:
    """Durations like the nats CLI: `512µs`, `5ms`, `5.80s`, `3m2s`, `1d2h0m0s`, `never`."""
    if ns is None:
        return "never"
    ns = int(ns)
    if ns < 0:
        ns = 0
    if ns < 1_000_000:
        return _go_small_duration(int(round(ns / 1_000)) * 1_000)
    if ns < 1_000_000_000:
        return _go_small_duration(int(round(ns / 1_000_000)) * 1_000_000)
    secs = ns // 1_000_000_000
    mins, hrs = secs // 60, secs // 3600
    days = hrs // 24
    years = days // 365
    if years:
        return f"{years}y{days % 365}d{hrs % 24}h{mins % 60}m{secs % 60}s"
    if days:
        return f"{days}d{hrs % 24}h{mins % 60}m{secs % 60}s"
    if hrs:
        return f"{hrs}h{mins % 60}m{secs % 60}s"
    if mins:
        return f"{mins}m{secs % 60}s"
    return f"{ns / 1e9:.2f}s"


def age(now_ns: int, then_ns: int) -> str:
    """Time since `then_ns`, or `never` when the event never happened (Go's zero time)."""
    if then_ns <= 0:
        return "never"
    return human_duration(now_ns - then_ns)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|y)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000,
            "y": 365 * 86_400_000_000_000}


def parse_duration_ns(text: str) -> int:
    """`1h30m`, `2m`, `500ms`, `1d` or a bare number of seconds, to nanoseconds."""
    text = text.strip()
    if not text:
        raise ValueError("empty duration")
    try:
        return int(float(text) * 1_000_000_000)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise ValueError(f"invalid duration {text!r}")
    return int(total)


# ---------------------------------------------------------------------------------------------
# Numbers and sizes

_IEC = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtpe]?)(i?)(b?)\s*$", re.IGNORECASE)


def human_bytes(n: int | float) -> str:
    """Binary sizes with one decimal below ten units: `318 B`, `1.2 KiB`, `12 MiB`."""
    n = int(n)
    if n < 10:
        return f"{n} B"
    exp = min(int(math.floor(math.log(n, 1024))), len(_IEC) - 1)
    val = math.floor(n / 1024**exp * 10 + 0.5) / 10
    return f"{val:.1f} {_IEC[exp]}" if val < 10 else f"{val:.0f} {_IEC[exp]}"


def parse_size(text: str) -> int:
    """`1024`, `10KB`, `1.5MiB`, `2g` to bytes (binary multiples, as the nats CLI reads them)."""
    if str(text).strip() in ("-1", "unlimited"):
        return -1
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"invalid size {text!r}")
    power = "kmgtpe".find(m.group(2).lower()) + 1 if m.group(2) else 0
    return int(float(m.group(1)) * 1024**power)


def fmt_int(n: int | float | None) -> str:
    return f"{int(n or 0):,}"


def fmt_value(v: Any) -> str:
    """How a scalar shows in a column layout: booleans lower case, ints with commas."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return fmt_int(v)
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    return str(v)


def unlimited(v: int | None, render: Callable[[int], str] = fmt_int) -> str:
    return "unlimited" if v is None or v < 0 else render(v)


# ---------------------------------------------------------------------------------------------
# Rendering


def terminal_width(default: int = 0) -> int:
    """COLUMNS when set (tests pin it), else the terminal's width, else `default` (no limit)."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    if sys.stdout.isatty():
        return shutil.get_terminal_size((80, 24)).columns
    return default


def _cell_len(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def _fit(text: str, width: int) -> str:
    if _cell_len(text) <= width:
        return text
    out = ""
    for ch in text:
        if _cell_len(out + ch) > width - 1:
            break
        out += ch
    return out + "…"


@dataclass
class Table:
    """A rounded box with the title inside, the layout nats CLI users see for `stream ls`.

    Uses rich's ROUNDED box characters; rendering is plain text so the bytes stay stable
    across terminals (no colour, no wrapping surprises) and snapshot tests can pin them.
    """

    title: str
    headers: Sequence[str]
    rows: list[list[str]] = field(default_factory=list)
    right_align: frozenset[int] = frozenset()
    shrinkable: Sequence[int] = ()

    def add_row(self, *cells: Any) -> None:
        self.rows.append([c if isinstance(c, str) else fmt_value(c) for c in cells])

    def render(self, max_width: int | None = None) -> str:
        from rich import box

        b = box.ROUNDED
        n = len(self.headers)
        widths = [_cell_len(h) for h in self.headers]
        for row in self.rows:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], _cell_len(cell))
        limit = terminal_width() if max_width is None else max_width

        def total() -> int:
            return sum(widths) + 3 * n + 1

        if limit:
            # Give up width from the columns allowed to shrink, widest first, but keep headers whole.
            while total() > limit:
                candidates = [i for i in self.shrinkable if widths[i] > max(_cell_len(self.headers[i]), 3)]
                if not candidates:
                    break
                widest = max(candidates, key=lambda i: widths[i])
                widths[widest] -= 1
        inner = total() - 2
        lines: list[str] = []
        if self.title:
            lines.append(b.top_left + b.top * inner + b.top_right)
            title = _fit(self.title, inner - 2)
            pad = inner - 2 - _cell_len(title)
            left = pad // 2
            lines.append(f"{b.mid_left} {' ' * left}{title}{' ' * (pad - left)} {b.mid_right}")
            lines.append(b.row_left + b.top_divider.join(b.row_horizontal * (w + 2) for w in widths)
                         + b.row_right)
        else:
            lines.append(b.top_left + b.top_divider.join(b.top * (w + 2) for w in widths) + b.top_right)

        def line(cells: Sequence[str]) -> str:
            parts = []
            for i, w in enumerate(widths):
                text = _fit(cells[i] if i < len(cells) else "", w)
                gap = " " * (w - _cell_len(text))
                parts.append(f" {gap}{text} " if i in self.right_align else f" {text}{gap} ")
            return b.head_left + b.head_vertical.join(parts) + b.head_right

        lines.append(line(self.headers))
        lines.append(b.head_row_left + b.head_row_cross.join(b.head_row_horizontal * (w + 2) for w in widths)
                     + b.head_row_right)
        for row in self.rows:
            lines.append(line(row))
        lines.append(b.bottom_left + b.bottom_divider.join(b.bottom * (w + 2) for w in widths)
                     + b.bottom_right)
        return "\n".join(lines) + "\n"


class Columns:
    """The nats CLI's `info` layout: a heading, then right-aligned `Label: value` rows in sections."""

    def __init__(self, heading: str = "") -> None:
        self.heading = heading
        self._items: list[tuple[str, str, str]] = []  # (kind, label, value)

    def section(self, title: str) -> None:
        self._items.append(("title", title, ""))

    def row(self, label: str, value: Any) -> None:
        self._items.append(("row", label, value if isinstance(value, str) else fmt_value(value)))

    def row_if(self, label: str, value: Any, cond: bool) -> None:
        if cond:
            self.row(label, value)

    def row_if_set(self, label: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            self.row(label, value)

    def line(self, text: str = "") -> None:
        self._items.append(("line", text, ""))

    def render(self) -> str:
        longest = max((_cell_len(lbl) for kind, lbl, _ in self._items if kind == "row"), default=0)
        out: list[str] = []
        if self.heading:
            out += [self.heading, ""]
        prev = ""
        for i, (kind, label, value) in enumerate(self._items):
            if kind == "title":
                if i != 0 and prev not in ("title", "blank"):
                    out.append("")
                out += [label if label.endswith(":") else label + ":", ""]
                prev = "title"
            elif kind == "row":
                pad = " " * (longest - _cell_len(label) + 2)
                out.append(f"{pad}{label}: {value}" if label else f"{' ' * (longest + 3)} {value}")
                prev = "row"
            else:
                out.append(label)
                prev = "blank" if not label else "line"
        return "\n".join(out) + "\n"


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def out(text: str = "") -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def confirm(prompt: str, force: bool) -> bool:
    """Ask before destroying data; `-f` skips the question, no terminal means no."""
    if force:
        return True
    if not sys.stdin.isatty():
        raise CLIError(f"cannot ask for confirmation ({prompt}?) without a terminal: pass -f to force")
    try:
        answer = input(f"? {prompt} (y/N) ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """One `  key: old -> new` line (JSON values) per key that an edit changes, sorted by key."""
    return [f"  {key}: {json.dumps(old.get(key))} -> {json.dumps(new.get(key))}"
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]


# ---------------------------------------------------------------------------------------------
# Connection and the JetStream API


async def _quiet(*_args: Any) -> None:
    """nats-py prints tracebacks from its default callbacks; the CLI reports errors itself."""


def server_urls(spec: str) -> list[str]:
    urls = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        urls.append(part if "://" in part else f"nats://{part}")
    return urls or ["nats://127.0.0.1:4222"]


def add_auth_options(parser: Any) -> None:
    """--user/--password/--token and --tlsca/--tlscert/--tlskey with the nats CLI's
    environment variables: the client commands and `pyjetstream eventing` take the same."""
    parser.add_argument("--user", default=os.environ.get("NATS_USER"), help="username")
    parser.add_argument("--password", default=os.environ.get("NATS_PASSWORD"), help="password")
    parser.add_argument("--token", default=os.environ.get("NATS_TOKEN"), help="authentication token")
    parser.add_argument("--tlsca", default=os.environ.get("NATS_CA"), help="CA file to verify the server with")
    parser.add_argument("--tlscert", default=os.environ.get("NATS_CERT"), help="client certificate file")
    parser.add_argument("--tlskey", default=os.environ.get("NATS_KEY"), help="client private key file")


def common_options() -> argparse.ArgumentParser:
    """Connection options every client command accepts, before or after the command name."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-s", "--server", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
                        help="NATS server URL(s), comma separated (env NATS_URL)")
    add_auth_options(common)
    common.add_argument("--timeout", type=float, default=5.0, help="time to wait for responses, seconds")
    return common


def auth_kwargs(args: Any) -> dict[str, Any]:
    """nats.connect() keyword arguments for the options add_auth_options() adds."""
    out: dict[str, Any] = {}
    if getattr(args, "user", None):
        out["user"], out["password"] = args.user, args.password or ""
    if getattr(args, "token", None):
        out["token"] = args.token
    tls = tls_context(getattr(args, "tlsca", None), getattr(args, "tlscert", None), getattr(args, "tlskey", None))
    if tls is not None:
        out["tls"] = tls
    return out


def tls_context(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """The client TLS context the nats CLI's --tlsca/--tlscert/--tlskey ask for, or None when
    none is given (a tls:// URL then trusts the system's CAs). Bad files: one-line CLIError."""
    if not (ca or cert or key):
        return None
    if bool(cert) != bool(key):
        raise CLIError("--tlscert and --tlskey go together")
    for opt, path in (("--tlsca", ca), ("--tlscert", cert), ("--tlskey", key)):
        if path and not os.path.isfile(path):
            raise CLIError(f"TLS: cannot read {opt} {path}: no such file")
    try:
        ctx = ssl.create_default_context(cafile=ca or None)
        if cert and key:
            ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise CLIError(f"TLS: cannot load the certificates: {getattr(exc, 'reason', None) or exc}") from None
    return ctx


async def connect(args: Any, name: str = "pyjetstream CLI") -> Any:
    """Connect with the global options; raises CLIError with one line when nobody answers."""
    import nats
    from nats.errors import Error as NatsError

    urls = server_urls(getattr(args, "server", "") or "")
    failures: list[BaseException] = []

    async def remember(exc: BaseException) -> None:
        failures.append(exc)

    # nats-py retries a refused server inside connect() until max_reconnect_attempts is used up
    # (0 would mean forever), so allow one quick retry and then give up.
    kwargs: dict[str, Any] = {
        "servers": urls,
        "name": name,
        "connect_timeout": max(1, int(math.ceil(args.timeout))),
        "allow_reconnect": False,
        "max_reconnect_attempts": 1,
        "reconnect_time_wait": 0.05,
        "error_cb": remember,
        "disconnected_cb": _quiet,
        "closed_cb": _quiet,
    }
    kwargs.update(auth_kwargs(args))
    try:
        return await nats.connect(**kwargs)
    except (TimeoutError, OSError, NatsError) as exc:
        cause = failures[-1] if failures else exc
        reason = _describe(cause)
        if "Authorization" in reason or "authorization" in reason:
            raise CLIError(f"could not connect to {', '.join(urls)}: authorization violation") from None
        raise CLIError(f"could not connect to {', '.join(urls)}: {reason}") from None


async def flushed(nc: Any, timeout: float) -> None:
    """Return once the server has read everything sent on `nc` before, such as the SUB a
    banner announces. One nats-py flush does not promise that: it writes its PING straight
    to the socket while earlier commands wait for the client's flusher task, so the PONG can
    come first. The flusher has written them by the time that PONG is read, so a second PING
    follows them."""
    await nc.flush(timeout=timeout)
    await nc.flush(timeout=timeout)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"tls: certificate verify failed ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"tls: {(exc.reason or str(exc)).lower().replace('_', ' ')}"
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc).removeprefix("nats: ")
    return text or type(exc).__name__


async def api_request(nc: Any, subject: str, body: Any = None, timeout: float = 5.0,
                      context: str = "") -> dict[str, Any]:
    """One `$JS.API.*` request; the decoded answer, or APIError carrying description and err_code."""
    from nats.errors import NoRespondersError
    from nats.errors import TimeoutError as NatsTimeout

    payload = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    try:
        msg = await nc.request(f"$JS.API.{subject}", payload, timeout=timeout)
    except NoRespondersError:
        raise CLIError("JetStream not enabled: no responders for the JetStream API") from None
    except (TimeoutError, NatsTimeout):
        raise CLIError(f"JetStream API request {subject} timed out after {timeout:g}s") from None
    try:
        answer = json.loads(msg.data)
    except ValueError:
        raise CLIError(f"invalid JSON answer to {subject}") from None
    error = answer.get("error") if isinstance(answer, dict) else None
    if error:
        raise APIError(int(error.get("code", 0)), int(error.get("err_code", 0)),
                       str(error.get("description", "unknown error")), context)
    return answer


async def paged(nc: Any, subject: str, key: str, timeout: float, body: dict[str, Any] | None = None
                ) -> list[Any]:
    """Collect every page of a LIST/NAMES API (they answer `total`, `offset`, `limit`)."""
    items: list[Any] = []
    while True:
        req = dict(body or {})
        req["offset"] = len(items)
        answer = await api_request(nc, subject, req, timeout)
        page = answer.get(key) or []
        items.extend(page)
        if not page or len(items) >= int(answer.get("total", 0)):
            return items


def run(args: Any, body: Callable[[Any], Awaitable[int | None]], connect_first: bool = True) -> int:
    """Run one command: connect, call `body(nc)`, close; turn failures into a line and a code."""

    async def main() -> int:
        nc = await connect(args) if connect_first else None
        try:
            return int(await body(nc) or 0)
        finally:
            if nc is not None and not nc.is_closed:
                try:
                    await asyncio.wait_for(nc.close(), 2)
                except (TimeoutError, OSError):
                    pass

    from nats.errors import Error as NatsError

    try:
        return asyncio.run(main())
    except CLIError as exc:
        err(f"pyjetstream: error: {exc.message}")
        return exc.exit_code
    except (NatsError, OSError, TimeoutError) as exc:
        # Whatever nats-py raises mid-command (lost connection, timeouts) is still one line.
        err(f"pyjetstream: error: {_describe(exc)}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def add_json_flag(parser: Any) -> None:
    parser.add_argument("--json", action="store_true", help="produce JSON output")


def add_force_flag(parser: Any) -> None:
    parser.add_argument("-f", "--force", action="store_true", help="act without asking for confirmation")


def subcommands(parser: Any, dest: str) -> Any:
    """Nested command group whose bare use prints its help instead of failing obscurely."""
    group = parser.add_subparsers(dest=dest, metavar="COMMAND")

    def show_help(_args: Any) -> int:
        parser.print_help()
        return EXIT_USAGE

    parser.set_defaults(func=show_help)
    return group


def parse_headers(items: Iterable[str] | None) -> dict[str, str]:
    """`--header K:V` pairs (repeatable) to a dict; a value may contain further colons."""
    headers: dict[str, str] = {}
    for item in items or ():
        if ":" not in item:
            raise CLIError(f"invalid header {item!r}: expected KEY:VALUE")
        key, value = item.split(":", 1)
        headers[key.strip()] = value.strip()
    return headers


def option_parent(common: Any) -> Any:
    """A copy of the global options whose defaults are SUPPRESS, for use as a subparser parent.

    argparse copies every attribute of a subparser's namespace over the parent's, so a plain
    `parents=[common]` would reset `-s X` given before the command name back to the default.
    With suppressed defaults an option only lands in the namespace when it is actually given.
    """
    import argparse

    cached = getattr(common, "_pyjetstream_suppressed", None)
    if cached is not None:
        return cached
    parent = argparse.ArgumentParser(add_help=False)
    for action in common._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        kwargs: dict[str, Any] = {"dest": action.dest, "default": argparse.SUPPRESS, "help": action.help}
        if isinstance(action, argparse._StoreAction):
            if action.type is not None:
                kwargs["type"] = action.type
            if action.metavar is not None:
                kwargs["metavar"] = action.metavar
        elif isinstance(action, argparse._StoreTrueAction):
            kwargs["action"] = "store_true"
        else:
            continue
        parent.add_argument(*action.option_strings, **kwargs)
    common._pyjetstream_suppressed = parent
    return parent
