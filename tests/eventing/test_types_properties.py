"""Properties of the type rules: what the publisher publishes, the subscriber's filter matches."""

from hypothesis import given, settings
from hypothesis import strategies as st

from pyjetstream.eventing import types as t
from pyjetstream.subjects.match import is_valid_literal_subject, is_valid_subject

# Printable ASCII plus the characters Kyma's cleaner removes, so both paths get exercised.
text = st.text(alphabet=st.sampled_from(list("abcXYZ019.-_ *>/\\\t") + ["ü"]), min_size=0, max_size=16)


@settings(max_examples=400, deadline=None)
@given(source=text, event_type=text)
def test_published_subject_is_literal_and_matched_by_the_standard_filter(source, event_type):
    try:
        target = t.publish_target(source, event_type)
    except t.EventTypeError:
        return
    assert is_valid_literal_subject(target.subject)
    if not event_type.startswith(t.LEGACY_TYPE_PREFIX):
        # The consumer created for a standard Subscription on the same source/type filters
        # exactly the subject the publisher uses.
        assert t.subscription_subject(source, event_type) == target.subject
        assert t.restore_original_type(target.event_type, source, target.original_type) == event_type


@settings(max_examples=200, deadline=None)
@given(source=text, event_type=text)
def test_standard_filter_is_a_valid_subject_when_segments_are_not_empty(source, event_type):
    subject = t.subscription_subject(source, event_type)
    if all(subject.split(".")):
        assert is_valid_subject(subject) and "*" not in subject and ">" not in subject
