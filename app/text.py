"""Checks every piece of user text passes before anything stores it or a model reads it.

Shared by the domains' request schemas (a layer below them, like ``app/db``): text a database
cannot store (NUL, lone surrogates) or a terminal should not show (control characters) is
refused with a message naming the field, and every field has a length limit, so the work a
request can cause is bounded before any model runs.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""Control characters other than tab, newline and carriage return (NUL included)."""
PLAIN_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
"""The same rule for the OpenAPI schema, so clients (and fuzzers) know it; the check itself is
:func:`check_text`, whose message names the field."""
PLAIN_SCHEMA = Field(json_schema_extra={"pattern": PLAIN_PATTERN})

QUESTION_MAX = 4000
REFERENCE_MAX = 8000
RUBRIC_ITEM_MAX = 500
RUBRIC_ITEMS_MAX = 12
NAME_MAX = 200
KEY_MAX = 128


def check_text(value: str, what: str) -> str:
    """``value`` if it is plain text; a ``ValueError`` naming ``what`` otherwise."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} contains invalid Unicode (a lone surrogate); send UTF-8 text") from None
    if _CONTROL.search(value):
        raise ValueError(f"{what} contains control characters; send plain text")
    return value


def _plain(value: str) -> str:
    return check_text(value, "the text")


PlainName = Annotated[str, StringConstraints(max_length=NAME_MAX), AfterValidator(_plain), PLAIN_SCHEMA]
PlainKey = Annotated[str, StringConstraints(min_length=1, max_length=KEY_MAX), AfterValidator(_plain), PLAIN_SCHEMA]
RubricItem = Annotated[str, StringConstraints(max_length=RUBRIC_ITEM_MAX), AfterValidator(_plain), PLAIN_SCHEMA]
Question = Annotated[
    str, StringConstraints(min_length=1, max_length=QUESTION_MAX), AfterValidator(_plain), PLAIN_SCHEMA
]
Reference = Annotated[
    str, StringConstraints(min_length=1, max_length=REFERENCE_MAX), AfterValidator(_plain), PLAIN_SCHEMA
]
ID_RE = re.compile(r"[0-9a-f]{32}")
"""What every id the service hands out looks like (a uuid4 in hex)."""


def is_id(value: str) -> bool:
    return ID_RE.fullmatch(value) is not None


IDK_ANSWER = "I don't know."
"""What an "I don't know" stores as the answer (it scores 0, like a skip)."""
