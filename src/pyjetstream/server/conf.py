"""Reader for nats-server's configuration syntax (a relaxed JSON/HOCON dialect).

Owns turning config text into plain Python values: maps, lists, strings, ints, floats,
bools. Supports `key: v`, `key = v`, `key v`, `{}` maps, `[]` lists (commas or newlines),
`#` and `//` comments, quoted and bare strings, size suffixes (`1GB`, `512MB`, `64K`),
`include path`, and `$VAR` references to earlier keys or the environment. Knows nothing of
what the keys mean; options.py interprets them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    pass


_SIZE_SUFFIX = {
    "k": 1000, "kb": 1024, "ki": 1024, "kib": 1024,
    "m": 1000**2, "mb": 1024**2, "mi": 1024**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1024**3, "gi": 1024**3, "gib": 1024**3,
    "t": 1000**4, "tb": 1024**4, "ti": 1024**4, "tib": 1024**4,
}
_NUM_RE = re.compile(r"^(-?\d+(?:\.\d+)?)([a-zA-Z]*)$")
_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
_BARE_END = set(" \t\r\n,;}]#")


def _scalar(text: str, env: dict[str, Any]) -> Any:
    low = text.lower()
    if low in _BOOLS:
        return _BOOLS[low]
    m = _NUM_RE.match(text)
    if m:
        num, suffix = m.groups()
        if not suffix:
            return float(num) if "." in num else int(num)
        mult = _SIZE_SUFFIX.get(suffix.lower())
        if mult is not None:
            return int(float(num) * mult)
        return text  # a duration such as 2s stays a string; options parse it
    if text.startswith("$"):
        name = text[1:]
        if name in env:
            return env[name]
        if name in os.environ:
            return _scalar(os.environ[name], {})
        raise ConfigError(f"variable reference for '{name}' on line could not be parsed")
    return text


class _Reader:
    def __init__(self, text: str, base: Path) -> None:
        self.s = text
        self.i = 0
        self.base = base
        self.vars: dict[str, Any] = {}

    def error(self, msg: str) -> ConfigError:
        line = self.s.count("\n", 0, self.i) + 1
        return ConfigError(f"config error on line {line}: {msg}")

    def skip(self, newlines: bool = True) -> None:
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c in " \t\r" or (newlines and c in "\n,;"):
                self.i += 1
            elif c == "#" or s.startswith("//", self.i):
                nl = s.find("\n", self.i)
                self.i = len(s) if nl < 0 else nl
            else:
                return

    def parse_map_body(self, closing: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while True:
            self.skip()
            if self.i >= len(self.s):
                if closing:
                    raise self.error(f"missing '{closing}'")
                return out
            if closing and self.s[self.i] == closing:
                self.i += 1
                return out
            key = self.read_key()
            # as nats-server's lexKeyEnd: any space, newlines included, may stand between a key
            # and its separator or value (`websocket` then `{` on the next line)
            self.skip(newlines=False)
            while self.i < len(self.s) and self.s[self.i] == "\n":
                self.i += 1
                self.skip(newlines=False)
            if key == "include":
                path = self.read_value()
                inc = self.base / str(path)
                sub = _Reader(inc.read_text(), inc.parent)
                sub.vars = dict(self.vars)
                out.update(sub.parse_map_body(None))
                continue
            if self.i < len(self.s) and self.s[self.i] in ":=":
                self.i += 1
                self.skip(newlines=False)
            value = self.read_value()
            out[key] = value
            self.vars[key] = value

    def read_key(self) -> str:
        s = self.s
        if s[self.i] in "\"'":
            return str(self.read_quoted())
        start = self.i
        while self.i < len(s) and s[self.i] not in " \t\r\n:={}[],;#":
            self.i += 1
        if start == self.i:
            raise self.error(f"unexpected character {s[self.i]!r}")
        return s[start:self.i]

    def read_quoted(self) -> str:
        q = self.s[self.i]
        end = self.s.find(q, self.i + 1)
        if end < 0:
            raise self.error("unterminated string")
        text = self.s[self.i + 1:end]
        self.i = end + 1
        return text.encode().decode("unicode_escape") if q == '"' and "\\" in text else text

    def read_value(self) -> Any:
        s = self.s
        if self.i >= len(s):
            raise self.error("missing value")
        c = s[self.i]
        if c == "{":
            self.i += 1
            return self.parse_map_body("}")
        if c == "[":
            self.i += 1
            items: list[Any] = []
            while True:
                self.skip()
                if self.i >= len(s):
                    raise self.error("missing ']'")
                if s[self.i] == "]":
                    self.i += 1
                    return items
                items.append(self.read_value())
        if c in "\"'":
            return self.read_quoted()
        start = self.i
        while self.i < len(s) and s[self.i] not in _BARE_END:
            self.i += 1
        return _scalar(s[start:self.i].strip(), self.vars)


def parse_config(text: str, base: Path | None = None) -> dict[str, Any]:
    return _Reader(text, base or Path(".")).parse_map_body(None)


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"error opening config file: {e}") from e
    return parse_config(text, p.parent)
