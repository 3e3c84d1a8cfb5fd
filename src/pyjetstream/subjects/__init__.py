"""Subjects: validation, matching predicates and the subscription index.

The public names are re-exported here; import from `pyjetstream.subjects`, not the modules.
Pure data structures: no asyncio, no IO, no knowledge of clients or streams.
"""

from .index import EMPTY_RESULT, SubjectIndex, SubscriptionLike
from .match import (
    FWC,
    PWC,
    has_wildcard,
    is_literal,
    is_subset,
    is_valid_literal_subject,
    is_valid_queue_name,
    is_valid_subject,
    subject_matches,
    subjects_overlap,
    tokenize,
)

__all__ = [
    "EMPTY_RESULT",
    "FWC",
    "PWC",
    "SubjectIndex",
    "SubscriptionLike",
    "has_wildcard",
    "is_literal",
    "is_subset",
    "is_valid_literal_subject",
    "is_valid_queue_name",
    "is_valid_subject",
    "subject_matches",
    "subjects_overlap",
    "tokenize",
]
