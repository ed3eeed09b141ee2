"""Hypothesis strategies for fuzzing the edge: arbitrary JSON, and real payloads with a few
of their nodes replaced by arbitrary JSON (so that the fuzzer reaches past the first check)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

# Text that has broken a hop before, or might: NUL and other controls, a lone surrogate, a
# non-ASCII digit, an IDN, markup in a host, a 400-digit number, emptiness.
NASTY_TEXT = ["\x00", "Nul\x00Name", "\x07\x1b\x7f\x85", "\ud800", "²", "ласточка.рф", "<>\"'/.ru", "9" * 400,
              "", " ", "\t\n", "x" * 5000, "2026-13-45T25:61:00Z", "0000-00-00", "NaN", "-1"]


def json_values(surrogates: bool = True, max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Any JSON value (as Python), with NASTY_TEXT in the mix; no lone surrogates when the
    value must be written as JSON first (orjson refuses them)."""
    nasty = [t for t in NASTY_TEXT if surrogates or "\ud800" not in t]
    text = st.text(max_size=30) | st.sampled_from(nasty)
    scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
               | st.floats(allow_nan=False, allow_infinity=False) | text)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                        max_leaves=max_leaves)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every node's path in a JSON value: dict keys and list indices, the root included."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, (*prefix, i))
    return out


def replaced(value: Any, path: tuple, new: Any) -> Any:
    """A copy of `value` with the node at `path` replaced by `new` (unchanged if it is gone)."""
    if not path:
        return new
    root = copy.deepcopy(value)
    node = root
    for step in path[:-1]:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return root
    # Only a node that is there: a list index is no key of an object, nor the reverse.
    if (isinstance(node, dict) and path[-1] in node) or (
            isinstance(node, list) and isinstance(path[-1], int) and path[-1] < len(node)):
        node[path[-1]] = new
    return root


def mutated(payload: Any, surrogates: bool = True) -> st.SearchStrategy[Any]:
    """`payload` with one to three of its nodes replaced by arbitrary JSON."""
    edits = st.lists(st.tuples(st.sampled_from(paths(payload)), json_values(surrogates)), min_size=1, max_size=3)

    def apply(changes: list[tuple[tuple, Any]]) -> Any:
        out = payload
        for path, new in changes:
            out = replaced(out, path, new)
        return out

    return edits.map(apply)
