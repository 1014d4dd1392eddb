"""tapegrad.save / tapegrad.load: state dicts (nested containers of tensors, arrays and Python scalars) as .npz.

The file is an ordinary numpy .npz read with allow_pickle=False. Every array is one entry named "a<N>"; the entry
"__tapegrad__" holds a JSON description of the container tree whose leaves refer to those entries. Dict keys keep
their type (str or int), so an optimizer state dict ({0: {...}}) round-trips.
"""
import json
import zipfile
from collections import OrderedDict

import numpy as np

from .tensor import Tensor, _wrap

_FORMAT = "tapegrad-npz-1"
_STRUCTURE = "__tapegrad__"


def _encode(obj, arrays):
    """The JSON-able description of obj, appending its arrays to `arrays`."""
    if isinstance(obj, Tensor):
        arrays.append(np.asarray(obj._data))
        from .nn.parameter import is_parameter
        return {"tensor": len(arrays) - 1, "requires_grad": obj.requires_grad, "parameter": is_parameter(obj)}
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biufc":
            raise TypeError(f"tapegrad.save: cannot save a numpy array of dtype {obj.dtype}")
        arrays.append(obj)
        return {"ndarray": len(arrays) - 1}
    if obj is None or isinstance(obj, (bool, str)):
        return {"value": obj}
    if isinstance(obj, (int, np.integer)):
        return {"int": int(obj)}
    if isinstance(obj, (float, np.floating)):
        return {"float": repr(float(obj))}   # repr keeps inf/nan and every bit
    if isinstance(obj, (list, tuple)):
        return {"list" if isinstance(obj, list) else "tuple": [_encode(x, arrays) for x in obj]}
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if isinstance(key, bool) or not isinstance(key, (str, int, np.integer)):
                raise TypeError(f"tapegrad.save: dict keys must be str or int, got {type(key).__name__}")
            items.append([key if isinstance(key, str) else {"int": int(key)}, _encode(value, arrays)])
        return {"odict" if isinstance(obj, OrderedDict) else "dict": items}
    raise TypeError(f"tapegrad.save: cannot save an object of type {type(obj).__name__} (tensors, numpy arrays, "
                    "numbers, strings, None and dicts/lists/tuples of them are supported)")


def save(obj, f):
    """Write obj (e.g. a module's or optimizer's state_dict) to the path or binary file f as .npz."""
    arrays = []
    structure = {"format": _FORMAT, "root": _encode(obj, arrays)}
    entries = {f"a{i}": a for i, a in enumerate(arrays)}
    entries[_STRUCTURE] = np.array(json.dumps(structure))
    if hasattr(f, "write"):
        np.savez(f, **entries)
    else:
        with open(f, "wb") as fh:   # np.savez would append ".npz" to a path
            np.savez(fh, **entries)


def _decode(node, arrays):
    if "tensor" in node:
        t = _wrap(np.array(arrays[f"a{node['tensor']}"]))
        if node.get("requires_grad"):
            t.requires_grad_(True)
        if node.get("parameter"):
            from .nn.parameter import mark_parameter
            mark_parameter(t)
        return t
    if "ndarray" in node:
        return np.array(arrays[f"a{node['ndarray']}"])
    if "value" in node:
        return node["value"]
    if "int" in node:
        return int(node["int"])
    if "float" in node:
        return float(node["float"])
    if "list" in node:
        return [_decode(x, arrays) for x in node["list"]]
    if "tuple" in node:
        return tuple(_decode(x, arrays) for x in node["tuple"])
    kind = "odict" if "odict" in node else "dict"
    out = OrderedDict() if kind == "odict" else {}
    for key, value in node[kind]:
        out[key if isinstance(key, str) else int(key["int"])] = _decode(value, arrays)
    return out


def load(f, map_location=None, weights_only=True):
    """Read an object written by tapegrad.save (never unpickles anything)."""
    name = getattr(f, "name", f)
    if hasattr(f, "read"):
        start = f.tell()
        magic = f.read(4)
        f.seek(start)
    else:
        with open(f, "rb") as fh:
            magic = fh.read(4)
    if magic != b"PK\x03\x04":   # numpy would otherwise try to read it as a pickle and talk about that
        raise RuntimeError(f"tapegrad.load: {name} is not a valid tapegrad checkpoint (expected an .npz written "
                           "by tapegrad.save; the file is not a zip archive)")
    try:
        with np.load(f, allow_pickle=False) as arrays:
            if not hasattr(arrays, "files") or _STRUCTURE not in arrays.files:
                raise ValueError(f"no '{_STRUCTURE}' entry")
            structure = json.loads(str(arrays[_STRUCTURE][()]))
            if structure.get("format") != _FORMAT:
                raise ValueError(f"unknown format {structure.get('format')!r}")
            return _decode(structure["root"], arrays)
    except FileNotFoundError:
        raise
    except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as err:
        raise RuntimeError(f"tapegrad.load: {name} is not a valid tapegrad checkpoint "
                           f"(expected an .npz written by tapegrad.save): {err}") from None
