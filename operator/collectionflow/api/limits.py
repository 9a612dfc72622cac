"""Every limit on a value that a flow author, an annotation or a phase controls, and the one
bounded parser that enforces them.

Whatever a user or a phase writes reaches the operator as text (an annotation, a termination
message) or as JSON already decoded by the watch (`spec.parameters`). Both go through this
module: the size is checked before anything is parsed, the nesting depth is checked by a
linear scan that never recurses, and every failure is an `InputRejected` naming the input, the
limit and the value found, never a `RecursionError`, a `ValueError` or a decoder's own error.
Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import orjson

MAX_PARAMETERS_BYTES: Final = 16 * 1024
MAX_PARAMETERS_DEPTH: Final = 32
MAX_INPUT_BYTES: Final = 64 * 1024
MAX_INPUT_DEPTH: Final = 32
MAX_RESULT_BYTES: Final = 4096  # what the kubelet keeps of a termination message
MAX_RESULT_DEPTH: Final = 32
MAX_ANNOTATION_TOKEN: Final = 253  # the retry annotation's value
WIRE_DEPTH: Final = 128
"""Depth at which the watch cuts an object's subtree before decoding it: below the decoder's
own limit (orjson refuses 1024), far above any depth this module accepts, so a cut object is
always refused by the input's own limit rather than by the decoder."""

CUT: Final = f"(cut: nested deeper than {WIRE_DEPTH})"
"""What `cut_deep` puts where it cut, so a limit can say the object was deeper than it shows."""

DEFAULT_MAX_PHASE_RUNS: Final = 50


class InputKind(StrEnum):
    """Which untrusted input was refused (the `kind` label of the rejected-inputs metric)."""

    PARAMETERS = "parameters"
    INPUT = "input"
    RESULT = "result"
    RETRY = "retry"
    SPEC = "spec"
    WATCH_EVENT = "watch_event"


class InputRejected(ValueError):
    """An untrusted value over a limit or not of the expected shape; says which and why."""

    def __init__(self, kind: InputKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


_SPECIAL = re.compile(rb'[\[\]{}"\\]')
_OPEN = frozenset(b"[{")


def _scan(raw: bytes) -> Iterator[tuple[int, int, int]]:
    """(offset, end, depth after it) of every bracket of `raw` outside strings; one pass."""
    depth, position, in_string = 0, 0, False
    while (match := _SPECIAL.search(raw, position)) is not None:
        at = match.start()
        char = raw[at]
        position = at + 1
        if char == 0x5C:  # a backslash: inside a string it escapes the next byte
            position += 1 if in_string else 0
        elif char == 0x22:
            in_string = not in_string
        elif not in_string:
            depth += 1 if char in _OPEN else -1
            yield at, at + 1, depth


def text_depth(raw: bytes) -> int:
    """The deepest nesting of brackets in JSON text, without parsing it."""
    return max((depth for _, _, depth in _scan(raw)), default=0)


def value_depth(value: Any) -> int:
    """The nesting depth of decoded JSON (a scalar is 0, `{}` is 1), without recursion."""
    return _walk(value)[0]


def _walk(value: Any) -> tuple[int, bool]:
    """The nesting depth of decoded JSON, and whether the wire cut part of it (`CUT`)."""
    deepest, cut = 0, False
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if item == CUT:
            cut = True
        elif isinstance(item, dict):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in item)
    return deepest, cut


_CUT_JSON = json.dumps(CUT).encode()


def cut_deep(raw: bytes, max_depth: int = WIRE_DEPTH) -> bytes:
    """`raw` JSON with every array or object nested deeper than `max_depth` replaced by
    the string `CUT`, so that a decoder with a depth limit of its own can read the rest. Linear."""
    pieces: list[bytes] = []
    kept_from = 0
    cut_at: int | None = None
    for start, end, depth in _scan(raw):
        if cut_at is None and depth > max_depth:
            pieces.append(raw[kept_from:start])
            cut_at = depth
        elif cut_at is not None and depth == cut_at - 1:
            pieces.append(_CUT_JSON)
            kept_from, cut_at = end, None
    if cut_at is not None:
        return raw  # unbalanced: the decoder will say so
    pieces.append(raw[kept_from:])
    return b"".join(pieces)


@dataclass(frozen=True)
class Bound:
    """The limits of one kind of input."""

    kind: InputKind
    what: str  # how a message names it: "the input annotation", "spec.parameters"
    max_bytes: int
    max_depth: int

    def parse(self, text: str | bytes) -> Any:
        """Decode JSON text within the limits, or InputRejected saying which was broken."""
        raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        if len(raw) > self.max_bytes:
            raise InputRejected(
                self.kind, f"{self.what} is {len(raw)} bytes; the limit is {self.max_bytes}"
            )
        depth = text_depth(raw)
        if depth > self.max_depth:
            raise InputRejected(
                self.kind, f"{self.what} is nested {depth} deep; the limit is {self.max_depth}"
            )
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as error:
            raise InputRejected(self.kind, f"{self.what} is not JSON: {error}") from None

    def parse_object(self, text: str | bytes) -> dict[str, Any]:
        """`parse`, and the value must be a JSON object."""
        value = self.parse(text)
        if not isinstance(value, dict):
            raise InputRejected(
                self.kind, f"{self.what} must be a JSON object, not {json_type(value)}"
            )
        return value

    def check(self, value: Any) -> None:
        """The same limits on a value already decoded (by the watch)."""
        depth, cut = _walk(value)
        if cut:
            raise InputRejected(
                self.kind,
                f"{self.what} is nested more than {WIRE_DEPTH} deep; the limit is {self.max_depth}",
            )
        if depth > self.max_depth:
            raise InputRejected(
                self.kind, f"{self.what} is nested {depth} deep; the limit is {self.max_depth}"
            )
        try:
            size = len(json.dumps(value, separators=(",", ":")).encode())
        except (ValueError, TypeError) as error:
            raise InputRejected(self.kind, f"{self.what} is not JSON: {error}") from None
        if size > self.max_bytes:
            raise InputRejected(
                self.kind, f"{self.what} is {size} bytes as JSON; the limit is {self.max_bytes}"
            )


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


PARAMETERS = Bound(
    InputKind.PARAMETERS, "spec.parameters", MAX_PARAMETERS_BYTES, MAX_PARAMETERS_DEPTH
)
MANUAL_INPUT = Bound(
    InputKind.INPUT,
    "the input annotation flows.collectionflow.io/input",
    MAX_INPUT_BYTES,
    MAX_INPUT_DEPTH,
)
PHASE_RESULT = Bound(
    InputKind.RESULT, "the termination message", MAX_RESULT_BYTES, MAX_RESULT_DEPTH
)


def decode_wire(raw: bytes) -> Any:
    """An API response or watch line: orjson, and when the object is nested deeper than it
    decodes, the same text with its deepest subtrees cut (`cut_deep`). A flow nested 1,100
    deep is thereby one flow with invalid parameters, not a watch that can never decode."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        cut = cut_deep(raw)
        if cut is raw:
            raise
        return orjson.loads(cut)
