"""Flat numeric arrays between numpy and arrow, zero-copy, without importing pandas.

pyarrow imports pandas the first time it converts to or from numpy (``pa.array``,
``Array.to_numpy``), only to ask whether the object is a pandas one: an import that lengthens every
stage's start-up (docs/decisions.md), for a library the preprocessing stages never use. These
helpers build the arrays from their buffers instead.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_NUMPY_TYPES = {
    pa.int8(): np.int8,
    pa.int16(): np.int16,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.uint8(): np.uint8,
    pa.uint16(): np.uint16,
    pa.uint32(): np.uint32,
    pa.uint64(): np.uint64,
    pa.float32(): np.float32,
    pa.float64(): np.float64,
}


def int64_array(values: np.ndarray) -> pa.Array:
    """``values`` as an arrow int64 array."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def bool_array(values: np.ndarray) -> pa.Array:
    """``values`` (booleans) as an arrow boolean array, e.g. a mask for ``pyarrow.compute.filter``."""
    values = np.asarray(values, dtype=bool)
    bits = np.packbits(values, bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])


def to_numpy(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An arrow array as numpy: from its own buffers for a numeric or boolean array without nulls, else
    pyarrow's conversion."""
    if isinstance(array, pa.ChunkedArray):
        if array.num_chunks == 0:
            return np.zeros(0, dtype=_NUMPY_TYPES.get(array.type, object))
        return np.concatenate([to_numpy(chunk) for chunk in array.chunks])
    if array.type == pa.bool_() and not array.null_count:
        if not len(array):
            return np.zeros(0, dtype=bool)
        bits = np.frombuffer(array.buffers()[1], dtype=np.uint8)
        return np.unpackbits(bits, count=array.offset + len(array), bitorder="little")[array.offset :].view(bool)
    dtype = _NUMPY_TYPES.get(array.type)
    if dtype is None or array.null_count:
        return array.to_numpy(zero_copy_only=False)  # strings, nulls, ...: rare here, pandas' import is fine
    data = np.frombuffer(array.buffers()[1], dtype=dtype) if len(array) else np.zeros(0, dtype)
    return data[array.offset : array.offset + len(array)]
