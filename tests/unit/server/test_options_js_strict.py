"""Config parsing of `jetstream { strict: ... }` (nats-server 2.12's NoJetStreamStrict): strict
by default, `false` drops unknown API request fields, anything but a bool refused with
nats-server's words; the key passes the config-file key check in any case."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyjetstream.server.options import JetStreamOptions, OptionsError, parse_server_args


def _opts(tmp_path: Path, text: str):  # -> ServerOptions
    path = tmp_path / "s.conf"
    path.write_text(text)
    return parse_server_args(["-c", str(path)])[0]


def test_strict_by_default(tmp_path: Path) -> None:
    assert JetStreamOptions().strict is True
    assert _opts(tmp_path, 'jetstream { store_dir: "/x" }').jetstream.strict is True
    assert _opts(tmp_path, "jetstream: enabled").jetstream.strict is True


@pytest.mark.parametrize(("text", "want"), [
    ("jetstream { strict: false }", False),
    ("jetstream { strict: true }", True),
    ("jetstream { Strict: off }", False),
    ("jetstream { STRICT = no, domain: hub }", False),
])
def test_strict_is_taken(tmp_path: Path, text: str, want: bool) -> None:
    opts = _opts(tmp_path, text)
    assert opts.jetstream.strict is want
    assert opts.jetstream.enabled


@pytest.mark.parametrize("value", ['"false"', "1", "[true]"])
def test_strict_must_be_a_bool(tmp_path: Path, value: str) -> None:
    with pytest.raises(OptionsError, match="Expected 'true' or 'false' for bool value"):
        _opts(tmp_path, f"jetstream {{ strict: {value} }}")
