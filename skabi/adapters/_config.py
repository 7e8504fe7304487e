"""The JSON form of an adapter's params and fitted statistics: tagged values, and the
checks on what a saved config may rebuild (arrays of numeric dtypes, of a declared shape)."""

import numpy as np

__all__ = ["ARRAY_DTYPES", "encode", "decode"]


def encode(value):
    """A JSON-serialisable, tagged form of params and fitted statistics."""
    if isinstance(value, np.ndarray):
        return {
            "__ndarray__": value.tolist(),
            "dtype": value.dtype.name,
            "shape": list(value.shape),
        }
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (type, np.dtype)):
        return {"__dtype__": np.dtype(value).name}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[str(k), encode(v)] for k, v in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"Cannot serialise {value!r} of type {type(value).__name__} to JSON.")


#: The dtypes an adapter's saved arrays may have (fitted statistics are numbers).
ARRAY_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                "uint64", "float16", "float32", "float64")


def _decode_array(value):
    """A saved array, its dtype and shape checked before anything is allocated."""
    dtype, shape = value.get("dtype"), value.get("shape")
    if dtype not in ARRAY_DTYPES:
        raise ValueError(f"an adapter array has dtype {dtype!r}; saved statistics have one "
                         f"of {ARRAY_DTYPES}.")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ValueError(f"an adapter array has shape {shape!r}, not a list of sizes.")
    array = np.asarray(value["__ndarray__"], dtype=dtype)
    if array.size != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"an adapter array holds {array.size} values, its shape {shape} "
                         f"needs {int(np.prod(shape, dtype=np.int64))}.")
    return array.reshape(shape)


def decode(value):
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return _decode_array(value)
        if "__dtype__" in value:
            return value["__dtype__"]
        if "__tuple__" in value:
            return tuple(decode(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {k: decode(v) for k, v in value["__dict__"]}
        raise ValueError(f"Unrecognised entry in an adapter config: {value!r}.")
    return value
