"""JSON from an untrusted file, parsed with a nesting limit.

``json.loads`` recurses once per bracket, so a file of 200,000 ``[`` raises RecursionError (or,
with a raised recursion limit, overflows the C stack). The depth is measured first, outside
strings, in one vectorised pass, and text nested deeper than vaegui ever writes is refused as a
ValueError like any other malformed JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

MAX_DEPTH = 32  # vaegui's own files nest at most 4 deep
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_STEP = np.zeros(256, np.int8)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1


def nesting_depth(text: str | bytes) -> int:
    """How deep brackets nest in ``text``, strings not counted."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if b"[" not in data and b"{" not in data:
        return 0
    data = _STRING.sub(b'""', data)
    steps = _STEP[np.frombuffer(data, np.uint8)]
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def loads_bounded(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` for untrusted text: ValueError for text nested deeper than ``max_depth``
    (and for anything else json refuses); never RecursionError."""
    depth = nesting_depth(text)
    if depth > max_depth:
        raise ValueError(f"nested {depth} deep, more than the {max_depth} allowed")
    try:
        return json.loads(text)
    except RecursionError:  # cannot happen below max_depth; kept so that none ever escapes
        raise ValueError("nested too deep") from None
