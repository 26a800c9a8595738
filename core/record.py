"""Dataclass-like records whose methods are shared, not generated.

``dataclasses.dataclass`` compiles an ``__init__``, ``__repr__`` and
``__eq__`` from source for every class at import: ~10 ms for the config's ~25
classes, paid by every CLI call that loads a config. Here one generic
``__init__`` walks the fields instead. Declared the same way: ``name: type =
default`` and ``field(default_factory=...)`` in the class body, in order.
"""


class _Missing:
    def __repr__(self):
        return "MISSING"


MISSING = _Missing()     # no default


class Field:
    __slots__ = ("name", "type", "default", "default_factory")

    def __init__(self, default=MISSING, default_factory=MISSING):
        self.name, self.type = None, None
        self.default, self.default_factory = default, default_factory

    def __repr__(self):
        return f"Field({self.name!r}, {self.type!r})"


def field(*, default=MISSING, default_factory=MISSING):
    """A field's default, as dataclasses.field (mutable ones need a factory)."""
    return Field(default, default_factory)


def dataclass(cls=None, *, eq=True):
    """Make `cls` a record of its annotated fields, in order: an ``__init__``
    taking them positionally or by keyword, ``__repr__`` and (unless `eq` is
    false: compared and hashed by identity) ``__eq__``."""
    if cls is None:
        return lambda cls: dataclass(cls, eq=eq)
    found = []
    for name, tp in cls.__dict__.get("__annotations__", {}).items():
        value = cls.__dict__.get(name, MISSING)
        f = value if isinstance(value, Field) else Field(default=value)
        if isinstance(f.default, (list, dict, set)):
            raise ValueError(f"{cls.__name__}.{name}: mutable default "
                             f"{type(f.default).__name__}: use default_factory")
        if f.default is MISSING and f.default_factory is MISSING and found and \
                not _required(found[-1]):
            raise TypeError(f"{cls.__name__}.{name}: a required field after one with a default")
        f.name, f.type = name, tp
        if f.default is MISSING:
            if name in cls.__dict__:
                delattr(cls, name)
        else:
            setattr(cls, name, f.default)
        found.append(f)
    cls.__record_fields__ = tuple(found)
    cls.__match_args__ = tuple(f.name for f in found)
    cls.__init__ = _init
    cls.__repr__ = _repr
    if eq:
        cls.__eq__ = _eq
        cls.__hash__ = None      # mutable, compared by value: as a dataclass
    return cls


def _required(f):
    return f.default is MISSING and f.default_factory is MISSING


def _init(self, *args, **kwargs):
    fields = type(self).__record_fields__
    if len(args) > len(fields):
        raise TypeError(f"{type(self).__name__}() takes {len(fields)} positional "
                        f"arguments but {len(args)} were given")
    values, used = self.__dict__, 0
    for i, f in enumerate(fields):
        if f.name in kwargs:
            if i < len(args):
                raise TypeError(f"{type(self).__name__}() got multiple values for "
                                f"argument {f.name!r}")
            values[f.name] = kwargs[f.name]
            used += 1
        elif i < len(args):
            values[f.name] = args[i]
        elif f.default_factory is not MISSING:
            values[f.name] = f.default_factory()
        elif f.default is not MISSING:
            values[f.name] = f.default
        else:
            raise TypeError(f"{type(self).__name__}() missing required argument: {f.name!r}")
    if used < len(kwargs):
        unknown = next(k for k in kwargs if k not in values)
        raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {unknown!r}")
    post_init = getattr(self, "__post_init__", None)
    if post_init is not None:
        post_init()


def _repr(self):
    inner = ", ".join(f"{f.name}={self.__dict__[f.name]!r}" for f in self.__record_fields__)
    return f"{type(self).__name__}({inner})"


def _eq(self, other):
    if type(other) is not type(self):
        return NotImplemented
    return all(self.__dict__[f.name] == other.__dict__[f.name] for f in self.__record_fields__)


def fields(cls_or_obj):
    """The fields of a record class or instance, in declaration order."""
    return cls_or_obj.__record_fields__


def is_record(obj):
    return hasattr(obj, "__record_fields__")


def asdict(obj):
    """A record as plain dicts and lists, recursively (as dataclasses.asdict)."""
    if hasattr(obj, "__record_fields__"):
        return {f.name: asdict(obj.__dict__[f.name]) for f in obj.__record_fields__}
    if isinstance(obj, (list, tuple)):
        return type(obj)(asdict(v) for v in obj)
    if isinstance(obj, dict):
        return {k: asdict(v) for k, v in obj.items()}
    return obj
