"""libcontainer.jsonio (json without the json package, for the hot commands)
reads and writes exactly what json does, and fails as json does."""
import json

import pytest

from libcontainer import jsonio

DOCS = [
    {"id": "c1", "init_pid": 12, "init_start_time": None, "creator": [1, 2],
     "stash": {"cgroups": {"paths": {"memory": "/sys/fs/cgroup/memory/x"}}},
     "oci": {"bundle": "/b", "process": {"args": ["sh", "-c", "echo \"hi\"\n"]}},
     "labels": {"k": "é \u2028 \U0001f600 \x7f"}, "big": -(1 << 70), "f": 1.5e-7,
     "flags": [True, False], "empty": [{}, []], "nested": [[[]]]},
    [], {}, "text", 3, -0.0, None, True, float("inf"), [float("-inf")],
]
OPTIONS = [{}, {"indent": 2}, {"indent": 4, "sort_keys": True}, {"indent": "\t"},
           {"separators": (",", ":")}, {"ensure_ascii": False},
           {"indent": 2, "ensure_ascii": False}]


@pytest.mark.parametrize("doc", DOCS)
def test_same_text_and_values_as_json(doc):
    for kw in OPTIONS:
        text = json.dumps(doc, **kw)
        assert jsonio.dumps(doc, **kw) == text, kw
        assert jsonio.loads(text) == json.loads(text)
        assert jsonio.loads(text.encode()) == json.loads(text.encode())
    assert repr(jsonio.loads(" NaN ")) == "nan"


@pytest.mark.parametrize("text", ["", " ", "{", "[1,]", "1 2", "nul", '{"a": 1} x',
                                  '{"a": "\x01"}', '{"a" 1}', "[1e400x]"])
def test_same_errors_as_json(text):
    with pytest.raises(ValueError) as ours:
        jsonio.loads(text)
    with pytest.raises(ValueError) as theirs:
        json.loads(text)
    assert str(ours.value) == str(theirs.value)


def test_unusual_values_as_json():
    loop = []
    loop.append(loop)
    for doc, error in (({1: "int key"}, None), ({"s": {1, 2}}, TypeError),
                       (loop, ValueError)):
        for kw in ({}, {"indent": 2}):
            if error is None:
                assert jsonio.dumps(doc, **kw) == json.dumps(doc, **kw)
                continue
            with pytest.raises(error) as ours:
                jsonio.dumps(doc, **kw)
            with pytest.raises(error) as theirs:
                json.dumps(doc, **kw)
            if kw == {}:
                assert str(ours.value) == str(theirs.value)


def test_errors_in_a_process_without_the_json_package():
    """The hot commands never import json: there the C scanner cannot raise
    JSONDecodeError itself (it raised SystemError on a truncated state.json)."""
    import subprocess
    import sys
    code = ("import sys\nfrom libcontainer import jsonio\nassert 'json' not in sys.modules\n"
            "for t in ['{\"a\": [1, 2', '{\"a\": \"b', '[1,', '']:\n"
            "    try:\n        jsonio.loads(t)\n    except ValueError as e:\n"
            "        print(type(e).__name__)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["JSONDecodeError"] * 4
