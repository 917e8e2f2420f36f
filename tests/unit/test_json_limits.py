"""Reading hostile JSON: one error for everything we will not read, never another exception."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.json_limits import MAX_DEPTH, UnreadableJson, loads, nesting_depth


def nested(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


@given(depth=st.integers(min_value=MAX_DEPTH + 1, max_value=20_000), kind=st.sampled_from("[{"))
@settings(max_examples=30, deadline=None)
def test_json_nested_past_the_limit_is_unreadable(depth: int, kind: str) -> None:
    text = nested(depth) if kind == "[" else '{"a":' * depth + "1" + "}" * depth
    with pytest.raises(UnreadableJson):
        loads(text)


@given(digits=st.integers(min_value=41, max_value=10_000), sign=st.sampled_from(["", "-"]))
@settings(max_examples=30, deadline=None)
def test_integers_with_too_many_digits_are_unreadable(digits: int, sign: str) -> None:
    with pytest.raises(UnreadableJson):
        loads('{"quantity": ' + sign + "9" * digits + "}")


@given(st.binary(max_size=300) | st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_any_input_parses_or_is_unreadable_and_nothing_else(raw: bytes | str) -> None:
    with contextlib.suppress(UnreadableJson):
        loads(raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@given(json_values)
@settings(max_examples=100, deadline=None)
def test_ordinary_json_reads_as_the_standard_library_reads_it(value: object) -> None:
    text = json.dumps(value)
    assert loads(text) == json.loads(text)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    assert nesting_depth(json.dumps({"a": "[[[[" * 100 + '\\"]'})) == 1
    assert loads(json.dumps(["[" * 1000])) == ["[" * 1000]
