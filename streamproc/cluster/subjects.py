"""Collection ids in NATS subjects, reversibly.

A CollectionId is 1-255 characters of ``[a-zA-Z0-9_.-]``; ``.`` separates subject tokens,
so ids are escaped into one token: ``_`` becomes ``_u`` and ``.`` becomes ``_d`` (letters,
digits and ``-`` stay). ``front.door_1`` is ``front_ddoor_u1``. The encoding is injective,
keeps ids readable in ``nats stream view`` and never yields ``*``, ``>`` or whitespace.
"""

from __future__ import annotations

import re

from streamproc.store.validation import check_collection_id

__all__ = [
    "DEFAULT_PREFIX",
    "collection_subject",
    "collection_from_subject",
    "decode_collection_id",
    "encode_collection_id",
]

DEFAULT_PREFIX = "streamproc.collections.log"
_TOKEN = re.compile(r"(?:[a-zA-Z0-9\-]|_u|_d)+")


def encode_collection_id(collection_id: str) -> str:
    """The subject token of a collection id (InvalidParameterException if the id is bad)."""
    check_collection_id(collection_id)
    return collection_id.replace("_", "_u").replace(".", "_d")


def decode_collection_id(token: str) -> str:
    """The collection id of a subject token; ValueError if it is not an encoded id."""
    if not _TOKEN.fullmatch(token):
        raise ValueError(f"{token!r} is not an encoded collection id")
    out = re.sub(r"_([ud])", lambda m: "_" if m[1] == "u" else ".", token)
    check_collection_id(out)
    return out


def collection_subject(collection_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``<prefix>.<encoded id>``: the subject of one collection's records."""
    return f"{prefix}.{encode_collection_id(collection_id)}"


def collection_from_subject(subject: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The collection id a record subject names; ValueError if it is not one."""
    head, sep, token = subject.rpartition(".")
    if head != prefix or not sep:
        raise ValueError(f"{subject!r} is not a collection subject under {prefix!r}")
    return decode_collection_id(token)
