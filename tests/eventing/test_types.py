"""Kyma type cleaning, subjects and consumer names."""

import hashlib

import pytest

from pyjetstream.eventing import types as t


def test_clean_source_removes_dots_and_wildcards():
    assert t.clean_source("my app.v1/x*y>z\\w") == "myappv1xyzw"


def test_clean_type_keeps_dots():
    assert t.clean_type("order.payment*success.v1") == "order.paymentsuccess.v1"
    assert t.clean_type("a b>c/d\\e.v1") == "abcde.v1"


def test_standard_and_exact_subjects():
    assert t.subscription_subject("myapp", "order.received.v1") == "kyma.myapp.order.received.v1"
    assert t.subscription_subject("my.app", "order>x.v1") == "kyma.myapp.orderx.v1"
    assert t.subscription_subject("ignored", "sap.kyma.custom.app.order.created.v1", t.EXACT) == \
        "kyma.sap.kyma.custom.app.order.created.v1"
    assert t.subscription_clean_type("a*b.v1", t.EXACT) == "a*b.v1"


def test_consumer_name_is_sha256_prefix():
    subject = "kyma.myapp.order.created.v1"
    expected = hashlib.sha256(b"test/test/kyma.myapp.order.created.v1").hexdigest()[:32]
    assert t.consumer_name("test", "test", subject) == expected
    assert len(expected) == 32
    assert t.consumer_description("test", "test", subject) == "test/test/kyma.myapp.order.created.v1"


def test_publish_target_standard_sets_originaltype():
    target = t.publish_target("myapp", "order.payment*success.v1")
    assert target.subject == "kyma.myapp.order.paymentsuccess.v1"
    assert target.event_type == target.subject
    assert target.original_type == "order.payment*success.v1"


def test_publish_target_empty_segment_is_rejected():
    with pytest.raises(t.EventTypeError, match="empty segments after cleaning"):
        t.publish_target("myapp", "order..v1")
    with pytest.raises(t.EventTypeError, match="empty segments"):
        t.publish_target("...", "order.v1")


def test_publish_target_legacy_prefix():
    target = t.publish_target("kyma", "sap.kyma.custom.my_app.order.item.created.v1")
    assert target.event_type == "sap.kyma.custom.myapp.orderitem.created.v1"
    assert target.subject == "kyma.sap.kyma.custom.myapp.orderitem.created.v1"
    assert target.original_type is None
    with pytest.raises(t.EventTypeError, match="invalid format"):
        t.publish_target("kyma", "sap.kyma.custom.app.created.v1")


def test_restore_original_type():
    assert t.restore_original_type("kyma.myapp.a.v1", "myapp", "a*.v1") == "a*.v1"
    assert t.restore_original_type("kyma.myapp.a.v1", "myapp", None) == "a.v1"
    assert t.restore_original_type("other.x", "myapp", "") == "other.x"


def test_split_name_version():
    assert t.split_name_version("order.created.v1") == ("order.created", "v1")
    assert t.split_name_version("noversion") is None
