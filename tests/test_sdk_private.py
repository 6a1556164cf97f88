"""The private Singer SDK names listed in `tap_capsule/sdk_private.py` exist in the installed SDK,
and they are the only private SDK names the two plugins use."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import typing as t
from pathlib import Path

import pytest

import tap_capsule
import target_capsule
from tap_capsule.sdk_private import PRIVATE_SDK_NAMES

ROOT = Path(__file__).resolve().parents[1]


def plugin_modules() -> list:
    """Every module of both packages except the sandbox (which never imports the SDK) and the
    `python -m` entry points."""
    return [
        importlib.import_module(info.name)
        for package in (tap_capsule, target_capsule)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
        if not info.name.startswith("tap_capsule.sandbox")
        and not info.name.endswith(".__main__")  # runs its command on import
    ]


def own_classes() -> list[type]:
    """The classes the two packages define."""
    return [
        cls
        for module in plugin_modules()
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__
    ]


def sdk_bases_of(cls: type) -> list[type]:
    return [b for b in cls.__mro__[1:] if b.__module__.startswith("singer_sdk")]


def private_names_of(cls: type) -> set[str]:
    """Private methods and class attributes, and the instance attributes its code assigns."""
    names = {n for n in vars(cls) if n.startswith("_") and not n.startswith("__")}
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return names
    return names | set(re.findall(r"self\.(_[a-z]\w*)\s*(?::[^=\n]+)?=", source))


def sdk_private_names(classes: t.Iterable[type]) -> set[str]:
    return set().union(*(private_names_of(b) for cls in classes for b in sdk_bases_of(cls)))


def is_self(node: ast.expr) -> bool:
    """`self`, `cls` or `super()`: the receiver of an attribute of the class itself."""
    if isinstance(node, ast.Name):
        return node.id in {"self", "cls"}
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
    )


def private_names_used_by_plugins() -> set[str]:
    """Private SDK names the plugins use.

    In a class derived from the SDK: `self._x` / `super()._x` and `def _x` where an SDK base has
    `_x`. Anywhere: `obj._x` on another object where any subclassed SDK class has `_x`.
    """
    everywhere = sdk_private_names(own_classes())
    used = set()
    for module in plugin_modules():
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and not is_self(node.value):
                used |= {node.attr} & everywhere
            if not isinstance(node, ast.ClassDef):
                continue
            cls = getattr(module, node.name, None)
            privates = sdk_private_names([cls]) if inspect.isclass(cls) else set()
            for inner in ast.walk(node):
                if isinstance(inner, ast.Attribute) and is_self(inner.value):
                    used |= {inner.attr} & privates
            used |= {
                f.name for f in node.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
            } & privates
    return used


def resolve(dotted: str) -> tuple[type, str]:
    module_name, class_name, name = dotted.rsplit(".", 2)
    return getattr(importlib.import_module(module_name), class_name), name


@pytest.mark.parametrize("dotted", sorted(PRIVATE_SDK_NAMES))
def test_listed_private_name_exists_in_the_installed_sdk(dotted):
    cls, name = resolve(dotted)
    assert any(name in private_names_of(base) for base in cls.__mro__), (
        f"{dotted} is gone from the installed singer-sdk: find the public way or the new name, "
        "then update tap_capsule/sdk_private.py"
    )
    assert PRIVATE_SDK_NAMES[dotted].strip(), f"{dotted}: say why there is no public way"


def test_every_private_sdk_name_used_is_listed():
    used = private_names_used_by_plugins()
    listed = {dotted.rsplit(".", 1)[1] for dotted in PRIVATE_SDK_NAMES}
    assert used - listed == set(), "list these in tap_capsule/sdk_private.py, with the reason"
    assert listed - used == set(), "no longer used: remove from tap_capsule/sdk_private.py"


def test_the_scan_sees_private_sdk_names():
    """The guard above would catch an unlisted use: the scan finds the listed ones by itself."""
    assert {"_validator", "_latest_state", "_write_state_message"} <= sdk_private_names(
        own_classes()
    )
    assert {"_validator", "_validate_and_parse"} <= private_names_used_by_plugins()


def test_every_sdk_override_is_marked_and_none_is_final():
    """`@override` on each method that replaces an SDK one; no override of an SDK `@final`."""
    unmarked, final = [], []
    for module in plugin_modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            bases = [b for b in cls.__mro__[1:] if b.__module__.startswith("singer_sdk")]
            for name, member in vars(cls).items():
                if name.startswith("__") or not any(name in vars(b) for b in bases):
                    continue
                function = (
                    getattr(member, "fget", None)  # property
                    or getattr(member, "func", None)  # cached_property
                    or getattr(member, "__func__", None)  # classmethod
                    or member
                )
                if not callable(function) or inspect.isclass(function):
                    continue  # a class attribute the SDK reads (name, schema, flags)
                if not getattr(function, "__override__", False):
                    unmarked.append(f"{cls.__qualname__}.{name}")
                if any(getattr(vars(b).get(name), "__final__", False) for b in bases):
                    final.append(f"{cls.__qualname__}.{name}")
    assert unmarked == [], "mark these with @override (typing_extensions)"
    assert final == [], "the SDK marks these final: use a hook it offers instead"
