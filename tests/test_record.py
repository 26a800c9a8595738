"""libcontainer.record: the config's dataclass-like records behave as
dataclasses do where the library relies on it."""
import copy
import pickle

import pytest

from libcontainer import configs
from libcontainer.record import dataclass, field, fields


@dataclass
class Point:
    x: int
    y: int = 0
    tags: list = field(default_factory=list)


@dataclass(eq=False)
class Handle:
    name: str
    seen: list = field(default_factory=list)

    def __post_init__(self):
        self.seen.append(self.name)


def test_init_positional_keyword_defaults():
    p = Point(1, tags=["a"])
    assert (p.x, p.y, p.tags) == (1, 0, ["a"])
    assert Point(1).tags is not Point(1).tags         # a fresh default each time
    assert [f.name for f in fields(Point)] == ["x", "y", "tags"]
    assert repr(p) == "Point(x=1, y=0, tags=['a'])"


@pytest.mark.parametrize("args, kwargs, message", [
    ((), {}, "missing required argument: 'x'"),
    ((1,), {"z": 2}, "unexpected keyword argument 'z'"),
    ((1,), {"x": 2}, "multiple values for argument 'x'"),
    ((1, 2, [], 4), {}, "takes 3 positional arguments but 4 were given"),
])
def test_wrong_arguments_are_type_errors(args, kwargs, message):
    with pytest.raises(TypeError, match=message):
        Point(*args, **kwargs)


def test_eq_hash_copy_pickle():
    assert Point(1, 2) == Point(1, 2) and Point(1, 2) != Point(2, 1)
    assert Point(1) != (1, 0, [])
    with pytest.raises(TypeError):
        hash(Point(1))
    h = Handle("a")
    assert h.seen == ["a"]                  # __post_init__ ran
    assert h == h and h != Handle("a")      # eq=False: identity, and hashable
    assert {h: 1}[h] == 1
    c = configs.Config(rootfs="/r", cgroups=configs.Cgroup(path="/x"))
    assert copy.deepcopy(c) == c == pickle.loads(pickle.dumps(c))
    assert configs.Config.from_dict(c.to_dict()) == c


def test_declaration_mistakes_are_caught():
    with pytest.raises(ValueError, match="mutable default"):
        @dataclass
        class Bad:
            items: list = []
    with pytest.raises(TypeError, match="required field after one with a default"):
        @dataclass
        class Order:
            a: int = 0
            b: int
