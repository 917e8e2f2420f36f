"""Parsing JSON that strangers wrote, within limits a real client never comes near.

Python's ``json`` recurses once per nesting level (so a body of a thousand ``[`` raises
``RecursionError``) and refuses integers longer than 4,300 digits with a bare
``ValueError``. ``loads`` checks the nesting before parsing and bounds the integers while
parsing, so both come back as one error, ``UnreadableJson``, that callers turn into a 400.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Our request bodies nest a handful of levels; a cursor two. Far below Python's recursion.
MAX_DEPTH = 64
# Enough for any amount in minor units or any count we take; a 5,000-digit number is not.
MAX_INTEGER_DIGITS = 40

# A JSON string (with its escapes) or a bracket: strings are skipped, brackets counted.
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class UnreadableJson(ValueError):
    """The text is not JSON, or is JSON nested or sized beyond what we read."""


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting in ``text``, ignoring brackets inside strings."""
    depth = deepest = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise UnreadableJson(f"an integer has more than {MAX_INTEGER_DIGITS} digits")
    return int(digits)


def loads(raw: str | bytes) -> Any:
    """``json.loads`` that raises ``UnreadableJson`` for anything it will not read."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
    except UnicodeDecodeError as exc:
        raise UnreadableJson(f"not UTF-8: {exc}") from None
    if nesting_depth(text) > MAX_DEPTH:
        raise UnreadableJson(f"nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(text, parse_int=_bounded_int)
    except UnreadableJson:
        raise
    except (ValueError, RecursionError) as exc:
        raise UnreadableJson(str(exc)) from None
