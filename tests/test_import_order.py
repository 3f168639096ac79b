"""Imports point one way: data, layers, metrics at the bottom; models and decoding above them; training,
evaluation and export above those (and not into each other); the command line on top."""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, "attn_tf")

LEVEL = {
    "errors": 0, "atomic": 0, "run_dir": 0, "dataset_names": 0, "data": 0, "layers": 0, "metrics": 0, "pretrained": 0,
    "models": 1, "decoding": 1,
    "training": 2, "evaluation": 2, "export": 2,
    "cli": 3, "evaluate": 3, "probe": 3,
}
SIBLINGS = ("training", "evaluation", "export")  # same level, must not import each other

# Imports still pointing the wrong way, each with its owner and the fix: none left (keep it that way).
KNOWN = {}


def _imported(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == \
                "import_module" and node.args and isinstance(node.args[0], ast.Constant):
            yield str(node.args[0].value)  # importlib.import_module("attn_tf....") counts too


def _top(name):
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "attn_tf" else None


def test_no_module_imports_a_package_above_it():
    wrong = []
    for dirpath, _, files in os.walk(PKG):
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, PKG)
            own = rel.split(os.sep)[0].replace(".py", "")
            if own not in LEVEL:
                continue
            tree = ast.parse(open(path, encoding="utf-8").read())
            for name in _imported(tree):
                other = _top(name)
                if other is None or other == own or other not in LEVEL:
                    continue
                bad = LEVEL[other] > LEVEL[own] or (own in SIBLINGS and other in SIBLINGS)
                if bad and (rel, other) not in KNOWN:
                    wrong.append("%s imports %s" % (rel, name))
    assert not wrong, "\n".join(wrong)


def test_every_package_has_a_level():
    for name in os.listdir(PKG):
        base = name[:-3] if name.endswith(".py") else name
        if base.startswith("__") or base.endswith(".egg-info") or base == "__pycache__":
            continue
        assert base in LEVEL, "attn_tf/%s has no place in the import order (tests/test_import_order.py)" % name
