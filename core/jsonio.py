"""JSON for the hot commands, without importing the json package.

``import json`` compiles the decoder's regular expressions, and ``re`` pulls
in ``enum``: ~8 ms of CPU, a third of a ``pyrunc state``. The work is done by
json's own C accelerator (``_json``) either way; this module calls it
directly, and hands anything unusual (an error to word, non-string keys,
``_json`` missing) to the json package, so results and errors are json's.
"""
try:
    from _json import encode_basestring, encode_basestring_ascii, make_encoder, make_scanner
except ImportError:     # another Python: the json package does it all
    make_scanner = None

_WS = " \t\n\r"


class _Decoder:
    # what the C scanner reads from a json.JSONDecoder
    strict = True
    object_hook = object_pairs_hook = None
    parse_float, parse_int = float, int

    @staticmethod
    def parse_constant(name):
        return float(name.replace("Infinity", "inf"))     # NaN, Infinity, -Infinity


_scan = make_scanner(_Decoder()) if make_scanner else None


def loads(raw):
    text = raw.decode() if isinstance(raw, (bytes, bytearray)) else raw
    if _scan is not None:
        start = len(text) - len(text.lstrip(_WS))
        try:
            value, end = _scan(text, start)
        except Exception:   # StopIteration (no value), an error, or SystemError:
            pass            # the C scanner raising outside json; json words the error
        else:
            if not text[end:].strip(_WS):
                return value
    import json
    return json.loads(raw)


def dumps(obj, indent=None, separators=None, sort_keys=False, ensure_ascii=True):
    """json.dumps for dicts with string keys, lists and scalars."""
    item_sep, key_sep = separators or ((",", ": ") if indent is not None else (", ", ": "))
    if make_scanner is not None:
        enc = encode_basestring_ascii if ensure_ascii else encode_basestring
        flat = make_encoder({}, _unserializable, enc, None, key_sep, item_sep,
                            sort_keys, False, True)
        if indent is None:
            return "".join(flat(obj, 0))
        pad = " " * indent if isinstance(indent, int) else indent
        try:
            return _pretty(obj, pad, "\n", flat, enc, item_sep, key_sep, sort_keys)
        except (_Unusual, RecursionError):     # a loop: json words it
            pass
    import json
    return json.dumps(obj, indent=indent, separators=separators, sort_keys=sort_keys,
                      ensure_ascii=ensure_ascii)


class _Unusual(Exception):
    pass


def _pretty(obj, pad, nl, flat, enc, item_sep, key_sep, sort_keys):
    inner = nl + pad
    if isinstance(obj, dict) and obj:
        items = sorted(obj.items()) if sort_keys else obj.items()
        if not all(isinstance(k, str) for k, _ in items):
            raise _Unusual()
        parts = [inner + enc(k) + key_sep +
                 _pretty(v, pad, inner, flat, enc, item_sep, key_sep, sort_keys)
                 for k, v in items]
    elif isinstance(obj, (list, tuple)) and obj:
        parts = [inner + _pretty(v, pad, inner, flat, enc, item_sep, key_sep, sort_keys)
                 for v in obj]
    else:
        return "".join(flat(obj, 0))
    opening, closing = ("{", "}") if isinstance(obj, dict) else ("[", "]")
    return opening + item_sep.join(parts) + nl + closing


def _unserializable(obj):
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def load(fp):
    return loads(fp.read())


def dump(obj, fp, **kwargs):
    fp.write(dumps(obj, **kwargs))
