"""CloudEvent parsing and encoding, cross-checked against the CloudEvents SDK."""

import json

import pytest
from cloudevents.core.bindings import http as sdk_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from pyjetstream.eventing import cloudevents as ce

BINARY = {"ce-specversion": "1.0", "ce-type": "order.received.v1", "ce-source": "myapp",
          "ce-eventtypeversion": "v1", "ce-id": "759815c3-b142-48f2-bf18-c6502dc0998f",
          "Content-Type": "application/json"}


def test_binary_mode_parses_tutorial_request():
    ev = ce.parse_http(BINARY, b'{"orderCode":"3211213"}')
    assert ev.type == "order.received.v1" and ev.source == "myapp"
    assert ev.id == "759815c3-b142-48f2-bf18-c6502dc0998f"
    assert ev.datacontenttype == "application/json"
    assert ev.extensions() == {"eventtypeversion": "v1"}
    assert json.loads(ev.data) == {"orderCode": "3211213"}


def test_missing_type_gives_sdk_message():
    headers = {k: v for k, v in BINARY.items() if k != "ce-type"}
    with pytest.raises(ce.CloudEventError) as info:
        ce.parse_http(headers, b"{}")
    assert "type: MUST be a non-empty string" in str(info.value)


def test_unknown_encoding_is_rejected():
    with pytest.raises(ce.CloudEventError, match="unknown Message encoding"):
        ce.parse_http({"Content-Type": "application/json"}, b"{}")


def test_structured_mode_and_roundtrip_through_stored_form():
    body = json.dumps({"specversion": "1.0", "source": "/default/sap.kyma/kt1",
                       "type": "sap.kyma.FreightOrder.Arrived.v1", "eventtypeversion": "v1",
                       "id": "A234-1234-1234", "data": "{\"foo\":\"bar\"}",
                       "datacontenttype": "application/json"}).encode()
    ev = ce.parse_http({"Content-Type": "application/cloudevents+json"}, body)
    assert ev.type == "sap.kyma.FreightOrder.Arrived.v1"
    stored = ce.parse_structured(ev.to_json())
    assert stored.attributes == ev.attributes
    assert stored.data == ev.data


def test_binary_data_survives_storage_as_base64():
    headers = dict(BINARY, **{"Content-Type": "application/octet-stream"})
    ev = ce.parse_http(headers, b"\x00\xff\x10")
    doc = json.loads(ev.to_json())
    assert "data_base64" in doc
    assert ce.parse_structured(ev.to_json()).data == b"\x00\xff\x10"


def test_text_data_is_stored_as_string():
    ev = ce.parse_http(dict(BINARY, **{"Content-Type": "text/plain"}), "héllo".encode())
    assert json.loads(ev.to_json())["data"] == "héllo"
    assert ce.parse_structured(ev.to_json()).data == "héllo".encode()


def test_bad_attributes_are_all_reported():
    with pytest.raises(ce.CloudEventError) as info:
        ce.parse_structured(json.dumps({"specversion": "2.0", "id": "", "source": "a b",
                                        "type": "t", "time": "yesterday", "Bad_Ext": "x"}))
    text = str(info.value)
    for expected in ("specversion", "id: MUST", "source", "time:", "bad key"):
        assert expected in text


@pytest.mark.parametrize("value", ["hello world", 'quote"d', "100%", "ünïcode", "plain"])
def test_header_values_match_sdk_encoding(value):
    sdk = SdkEvent(attributes={"type": "a.b", "source": "s", "id": "1", "specversion": "1.0",
                               "myext": value, "datacontenttype": "application/json"}, data={"x": 1})
    msg = sdk_http.to_binary(sdk, JSONFormat())
    ours = ce.parse_http(msg.headers, msg.body)
    assert ours.get("myext") == value
    assert ours.to_binary_headers()["ce-myext"] == msg.headers["ce-myext"]
    back = sdk_http.from_binary(sdk_http.HTTPMessage(ours.to_binary_headers(), ours.data), JSONFormat(),
                                SdkEvent)
    assert back.get_extension("myext") == value


def test_invalid_percent_encoding_is_rejected():
    headers = dict(BINARY, **{"ce-myext": "%C0%A0"})
    with pytest.raises(ce.CloudEventError, match="percent"):
        ce.parse_http(headers, b"{}")


def test_rfc3339():
    assert ce.is_rfc3339("2020-09-28T14:47:16.491Z")
    assert ce.is_rfc3339("2020-09-28T14:47:16+02:00")
    assert not ce.is_rfc3339("2020-13-28T14:47:16Z")
    assert not ce.is_rfc3339("28.09.2020")


# -- the fast paths of header encoding and the URI check (issue 14) must change no answer --

def _quoted(text):
    from urllib.parse import quote

    try:
        return quote(text, safe=ce._HEADER_SAFE)
    except UnicodeEncodeError:
        return UnicodeEncodeError


def _encoded(text):
    try:
        return ce.encode_header_value(text)
    except UnicodeEncodeError:
        return UnicodeEncodeError


def test_header_encoding_equals_percent_encoding_for_every_code_point():
    for code in range(0x110000):
        ch = chr(code)
        assert _encoded(ch) == _quoted(ch), hex(code)
        assert _encoded(f"a{ch}~") == _quoted(f"a{ch}~"), hex(code)


@pytest.mark.parametrize("value", ["", "order.received.v1", "a b", 'say "hi"', "100%", "%41", "é", "\ud800",
                                   "~!#$&'()*+,/:;<=>?@[\\]^_`{|}", "\x7f", "tab\there", True, False, 3])
def test_header_encoding_examples(value):
    expected = _quoted("true" if value is True else "false" if value is False else str(value))
    assert _encoded(value) == expected


@pytest.mark.parametrize(("value", "ok"), [
    ("myapp", True), ("/apps/my%20app", True), ("%", False), ("a%2", False), ("a%zz", False), ("%%41", False),
    ("%4141%", False), ("http://x/%C3%A9", True), ("", False), ("a b", False), ("a<b", False), ("%2%41", False)])
def test_uri_reference_percent_escapes(value, ok):
    assert ce.is_uri_reference(value) is ok
