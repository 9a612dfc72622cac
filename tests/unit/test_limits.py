"""The bounded parser of everything a user or a phase controls: limits, and the typed error.

Property-based: any bytes, any JSON within and beyond the limits, never an exception other than
`InputRejected`, and never more than a bounded time (hypothesis' deadline).
"""

from __future__ import annotations

import json
import time
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectionflow.api.limits import (
    CUT,
    MANUAL_INPUT,
    MAX_INPUT_BYTES,
    MAX_INPUT_DEPTH,
    PARAMETERS,
    PHASE_RESULT,
    WIRE_DEPTH,
    Bound,
    InputKind,
    InputRejected,
    cut_deep,
    decode_wire,
    text_depth,
    value_depth,
)
from collectionflow.domain.results import InvalidPhaseResult, PhaseResult
from collectionflow.domain.view import flow_view, retry_token

pytestmark = pytest.mark.unit

BOUNDS = [PARAMETERS, MANUAL_INPUT, PHASE_RESULT]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=40,
)


def nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


@pytest.mark.parametrize("bound", BOUNDS, ids=lambda b: b.kind.value)
@settings(deadline=500, max_examples=150)
@given(raw=st.binary(max_size=6000))
def test_any_bytes_parse_or_fail_as_the_typed_error(bound: Bound, raw: bytes) -> None:
    rejected = None
    try:
        bound.parse(raw)
    except InputRejected as error:
        rejected = error
    if rejected is not None:
        assert rejected.kind is bound.kind
        assert bound.what in str(rejected)


@pytest.mark.parametrize("bound", BOUNDS, ids=lambda b: b.kind.value)
@settings(deadline=500, max_examples=150)
@given(value=json_values)
def test_json_within_the_limits_reads_back_as_written(bound: Bound, value: Any) -> None:
    text = json.dumps(value)
    if len(text.encode()) <= bound.max_bytes and value_depth(value) <= bound.max_depth:
        assert bound.parse(text) == value
        bound.check(value)
    else:
        with pytest.raises(InputRejected):
            bound.parse(text)


@settings(deadline=1000, max_examples=60)
@given(
    depth=st.integers(min_value=MAX_INPUT_DEPTH + 1, max_value=20_000),
    shape=st.sampled_from([("[", "]"), ('{"a":', "}")]),
)
def test_json_nested_past_the_limit_is_refused_by_depth_not_recursion(
    depth: int, shape: tuple[str, str]
) -> None:
    opener, closer = shape
    text = opener * depth + ("1" if opener != "[" else "") + closer * depth
    raw = text.encode()
    with pytest.raises(InputRejected, match=r"nested|bytes"):
        MANUAL_INPUT.parse(raw[:MAX_INPUT_BYTES])
    assert text_depth(raw) == depth


@settings(deadline=2000, max_examples=40)
@given(quotes=st.integers(min_value=1, max_value=40_000))
def test_the_depth_scan_is_linear_on_strings_that_never_end(quotes: int) -> None:
    raw = b'"\\"' * quotes
    started = time.perf_counter()
    with pytest.raises(InputRejected):
        MANUAL_INPUT.parse(raw[:MAX_INPUT_BYTES])
    assert time.perf_counter() - started < 1.0


def test_each_limit_names_the_input_the_limit_and_the_value() -> None:
    with pytest.raises(InputRejected, match=r"is 65537 bytes; the limit is 65536") as size:
        MANUAL_INPUT.parse("x" * 65537)
    assert size.value.kind is InputKind.INPUT
    with pytest.raises(InputRejected, match=r"nested 5000 deep; the limit is 32"):
        MANUAL_INPUT.parse(nested(5000))
    with pytest.raises(InputRejected, match=r"must be a JSON object, not an array"):
        MANUAL_INPUT.parse_object("[1]")
    with pytest.raises(InputRejected, match=r"is not JSON"):
        MANUAL_INPUT.parse_object("{not json")
    with pytest.raises(InputRejected, match=r"spec.parameters is nested 40 deep"):
        PARAMETERS.check(json.loads(nested(40)))


@settings(deadline=1000, max_examples=100)
@given(value=json_values, depth=st.integers(min_value=0, max_value=3000))
def test_the_wire_cut_keeps_what_is_shallow_and_decodes_what_is_deep(
    value: Any, depth: int
) -> None:
    deep = b"[" * depth + b"]" * depth if depth else b"null"
    raw = b'{"spec":{"keep":' + orjson.dumps(value) + b',"deep":' + deep + b"}}"
    decoded = decode_wire(raw)
    assert decoded["spec"]["keep"] == value
    kept = value_depth(decoded["spec"]["deep"])
    assert kept == depth or kept <= WIRE_DEPTH  # as sent, or cut where orjson gives up
    if depth > 1024:
        assert kept <= WIRE_DEPTH


def test_cut_deep_replaces_only_the_deepest_subtrees() -> None:
    cut = json.dumps(CUT).encode()
    assert cut_deep(b'{"a":{"b":{"c":[1]}},"d":"]]][[["}', 2) == (
        b'{"a":{"b":' + cut + b'},"d":"]]][[["}'
    )
    with pytest.raises(InputRejected, match=r"nested more than 128 deep; the limit is 32"):
        PARAMETERS.check(decode_wire(b'{"p":' + b"[" * 2000 + b"]" * 2000 + b"}"))
    assert cut_deep(b"[[[", 1) == b"[[["  # unbalanced: left for the decoder to refuse


@settings(deadline=500, max_examples=200)
@given(message=st.text(max_size=5000))
def test_a_termination_message_is_a_result_or_an_invalid_phase_result(message: str) -> None:
    rejected = None
    try:
        PhaseResult.from_message(message)
    except InvalidPhaseResult as error:
        rejected = error
    if rejected is not None:
        assert rejected.kind is InputKind.RESULT
        assert str(rejected).startswith("not a phase result")


def test_a_result_with_an_unknown_field_or_nested_too_deep_is_not_a_result() -> None:
    with pytest.raises(InvalidPhaseResult, match="surprise: Extra inputs are not permitted"):
        PhaseResult.from_message('{"state":"succeeded","next_phase":null,"surprise":1}')
    deep = '{"state":"succeeded","next_phase":null,"outputs":{"x":' + nested(1900) + "}}"
    with pytest.raises(InvalidPhaseResult, match="nested 1902 deep"):
        PhaseResult.from_message(deep)


def flow_body(annotations: dict[str, str]) -> dict[str, Any]:
    meta = {"name": "f", "namespace": "ns", "uid": "u", "annotations": annotations}
    return {"metadata": meta, "spec": {}, "status": {}}


@settings(deadline=500, max_examples=150)
@given(raw=st.text(max_size=3000))
def test_any_input_annotation_is_an_object_or_an_input_error(raw: str) -> None:
    view = flow_view(flow_body({"flows.collectionflow.io/input": raw}))
    assert (view.manual_input is None) != (view.input_error is None) or not raw
    if view.manual_input is not None:
        assert isinstance(view.manual_input, dict)


@settings(deadline=500, max_examples=100)
@given(raw=st.text(max_size=1000))
def test_the_retry_token_is_bounded(raw: str) -> None:
    token = retry_token(raw)
    assert token is None or len(token) <= 253
    assert retry_token(raw) == token
