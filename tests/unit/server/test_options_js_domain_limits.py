"""Config parsing for issue 12: `jetstream { domain }` with nats-server's checks and words, and
the account JetStream limits under every spelling nats-server's parseJetStreamForAccount takes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pyjetstream.server.options import OptionsError, parse_server_args


def _opts(tmp_path: Path, text: str):  # -> ServerOptions
    path = tmp_path / "s.conf"
    path.write_text(text)
    return parse_server_args(["-c", str(path)])[0]


def test_domain_is_taken(tmp_path: Path) -> None:
    assert _opts(tmp_path, 'jetstream { domain: "hub" }').jetstream.domain == "hub"
    assert _opts(tmp_path, 'jetstream { Domain: hub2, store_dir: "/x" }').jetstream.domain == "hub2"
    assert _opts(tmp_path, "jetstream { domain: \"\" }").jetstream.domain == ""
    assert _opts(tmp_path, "jetstream: enabled").jetstream.domain == ""


@pytest.mark.parametrize(("value", "msg"), [
    ('"a.b"', "invalid domain name: may not contain ., * or >"),
    ('"x*"', "invalid domain name: may not contain ., * or >"),
    ('"x>"', "invalid domain name: may not contain ., * or >"),
    ('"a b"', 'invalid domain name: derived "$JS.a b.API.>" is not a valid subject'),
    ("5", "jetstream domain must be a string"),
    ("[a]", "jetstream domain must be a string"),
])
def test_bad_domains_are_refused_with_nats_server_words(tmp_path: Path, value: str, msg: str) -> None:
    with pytest.raises(OptionsError, match=re.escape(msg)):
        _opts(tmp_path, f"jetstream {{ domain: {value} }}")


def test_account_limits_every_spelling(tmp_path: Path) -> None:
    opts = _opts(tmp_path, """
accounts {
  A { jetstream { max_ack_pending: 5, memory_max_stream_bytes: 1K, store_max_stream_bytes: 2M,
                  max_bytes_required: true } }
  B { jetstream { mem_max_stream_bytes: 10, disk_max_stream_bytes: 20, max_stream_bytes: true } }
  C { jetstream { MAX_BYTES: false } }
  D { jetstream: enabled }
}""")
    a, b, c, d = (opts.accounts[n] for n in "ABCD")
    assert (a.max_ack_pending, a.memory_max_stream_bytes, a.store_max_stream_bytes, a.max_bytes_required) == (
        5, 1000, 2_000_000, True)  # K and M are decimal in nats config
    assert (b.memory_max_stream_bytes, b.store_max_stream_bytes, b.max_bytes_required) == (10, 20, True)
    assert c.max_bytes_required is False and c.jetstream
    assert (d.max_ack_pending, d.memory_max_stream_bytes, d.store_max_stream_bytes, d.max_bytes_required) == (
        -1, -1, -1, False)


@pytest.mark.parametrize(("body", "msg"), [
    ("max_bytes_required: 1", 'Expected a parseable bool for "max_bytes_required", got 1'),
    ('max_stream_bytes: "yes"', 'Expected a parseable bool for "max_bytes_required", got yes'),
    ("max_ack_pending: lots", "'max_ack_pending' must be an integer"),
    ("store_max_stream_bytes: [1]", "invalid size"),
    ("max_stream_bytes_required: true", "unsupported account jetstream key 'max_stream_bytes_required'"),
])
def test_bad_account_limits_are_refused(tmp_path: Path, body: str, msg: str) -> None:
    with pytest.raises(OptionsError, match=re.escape(msg)):
        _opts(tmp_path, f"accounts {{ A {{ jetstream {{ {body} }} }} }}")
