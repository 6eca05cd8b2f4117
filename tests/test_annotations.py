"""Every public signature is annotated, and the package ships `py.typed` (PEP 561).

The public modules are the ones the API reference documents (the `::: module`
lines of docs/reference); the public names are each module's `__all__`. For a
public function, every parameter and the return must carry an annotation; for a
public class, the same holds for its `__init__` (no return needed), for every
public method and property that kimbalance defines (methods inherited from Keras
are Keras' business) and for the special methods users call through syntax
(`__call__`, `__len__`, `__iter__`, `__getitem__`, ...). `*args` and
`**kwargs` count too (`Any` is fine there). Annotations are read as written
(`from __future__ import annotations` strings), never evaluated, so the check
is fast and needs no backend.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pathlib
import re
import sys
import tomllib
import types

import kimbalance

ROOT = pathlib.Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"
PACKAGE = pathlib.Path(kimbalance.__file__).resolve().parent

# Special methods users call through syntax (`f(x)`, `len(s)`, `for i in s`,
# `gen[i]`): their signatures are public API as much as named methods.
PUBLIC_DUNDERS = frozenset(
    {"__init__", "__call__", "__iter__", "__next__", "__len__", "__getitem__",
     "__contains__"}
)

# The directive mkdocstrings expands into one object's documentation.
_DIRECTIVE = re.compile(r"^:::\s+([\w.]+)\s*$", re.MULTILINE)


def documented_modules() -> list[str]:
    """The modules the API reference documents, deepest first, without repeats.

    Deepest first so that a name re-exported by a parent package (every
    sampler is also `kimbalance.data.X`) is reported under the module that
    defines its topic.
    """
    names: set[str] = set()
    for page in sorted(REFERENCE.rglob("*.md")):
        for target in _DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            module = _documented_module(target)
            if module is not None:
                names.add(module.__name__)
    return sorted(names, key=lambda name: (-name.count("."), name))


def _documented_module(target: str) -> types.ModuleType | None:
    """The module `target` names, or None for an object (`kimbalance.evaluate`).

    A module that fails to import fails the test (a missing optional
    dependency must not hide a module from the check).
    """
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as error:
        if error.name != target:
            raise
    parent, _, attribute = target.rpartition(".")
    assert hasattr(importlib.import_module(parent), attribute), target
    return None


def _is_ours(obj: object) -> bool:
    return (getattr(obj, "__module__", None) or "").split(".")[0] == "kimbalance"


def _unwrap(member: object) -> tuple[object | None, bool]:
    """The function behind a class attribute and whether it takes self/cls."""
    if isinstance(member, staticmethod):
        return member.__func__, False
    if isinstance(member, classmethod):
        return member.__func__, True
    if isinstance(member, functools.cached_property):
        return member.func, True
    if inspect.isfunction(member):
        return member, True
    return None, False


def _missing(
    function: object, *, bound: bool, needs_return: bool
) -> list[str]:
    """The unannotated parameters of `function` (`return` for the return)."""
    # Decorated functions (functools.wraps, lru_cache) show the wrapped
    # function's signature, as `help()` and editors do.
    signature = inspect.signature(function)  # type: ignore[arg-type]
    parameters = list(signature.parameters.values())
    if bound and parameters:
        parameters = parameters[1:]  # self / cls
    missing = [
        parameter.name
        for parameter in parameters
        if parameter.annotation is inspect.Parameter.empty
    ]
    if needs_return and signature.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def _class_offenders(label: str, cls: type, visited: set[int]) -> list[str]:
    offenders = []
    seen: set[str] = set()
    # kimbalance's own classes in the MRO: a public method a kimbalance base
    # class defines is part of the subclass's API too; each function is
    # reported once, under the first public class found with it.
    for klass in cls.__mro__:
        if not _is_ours(klass):
            continue
        for attribute, member in vars(klass).items():
            if attribute in seen:
                continue
            if attribute.startswith("_") and attribute not in PUBLIC_DUNDERS:
                continue
            seen.add(attribute)
            if id(member) in visited:
                continue
            if attribute in getattr(klass, "__dataclass_fields__", {}):
                continue  # a field's default value (may be a function)
            visited.add(id(member))
            if isinstance(member, property):
                accessors = [
                    (accessor, needs)
                    for accessor, needs in ((member.fget, True), (member.fset, False))
                    if accessor is not None
                ]
                for accessor, needs_return in accessors:
                    missing = _missing(accessor, bound=True, needs_return=needs_return)
                    for name in missing:
                        offenders.append(f"{label}.{attribute}({name})")
                continue
            function, bound = _unwrap(member)
            if function is None:
                continue  # a class attribute, not a method
            needs_return = attribute != "__init__"
            for name in _missing(function, bound=bound, needs_return=needs_return):
                offenders.append(f"{label}.{attribute}({name})")
    return offenders


def offenders(module_names: list[str]) -> list[str]:
    """Every unannotated public parameter as `module.Name.method(param)`."""
    found = []
    visited: set[int] = set()
    for module_name in module_names:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if isinstance(obj, types.ModuleType) or id(obj) in visited:
                continue
            visited.add(id(obj))
            label = f"{module_name}.{name}"
            if inspect.isclass(obj):
                if _is_ours(obj):
                    found.extend(_class_offenders(label, obj, visited))
            elif callable(obj) and _is_ours(obj):
                found.extend(
                    f"{label}({parameter})"
                    for parameter in _missing(obj, bound=False, needs_return=True)
                )
    return found


def test_the_reference_documents_the_public_modules():
    modules = documented_modules()
    # The walk below is only as good as this list: the top-level package and
    # the subpackages every user imports must be on it.
    for expected in (
        "kimbalance",
        "kimbalance.weights",
        "kimbalance.losses",
        "kimbalance.layers",
        "kimbalance.metrics",
        "kimbalance.data",
        "kimbalance.data.samplers",
        "kimbalance.thresholds",
        "kimbalance.callbacks",
        "kimbalance.training",
        "kimbalance.evaluation",
        "kimbalance.models",
        "kimbalance.distributed",
        "kimbalance.experiments",
    ):
        assert expected in modules, expected


def test_every_public_signature_is_annotated():
    unannotated = offenders(documented_modules())
    assert not unannotated, (
        f"{len(unannotated)} public parameters or returns lack an annotation:\n"
        + "\n".join(unannotated)
    )


def test_the_checker_reports_every_kind_of_gap():
    """The walk itself finds what it should, so a pass above means something."""
    module = types.ModuleType("kimbalance._annotation_probe")

    def loose(x, *args, y: int = 0, **kwargs) -> int:
        return y

    class Probe:
        def __init__(self, a, b: int) -> None:
            self.b = b

        def method(self, c: int):
            return c

        @classmethod
        def make(cls, d) -> Probe:
            return cls(d, 0)

        @staticmethod
        def helper(e) -> None:
            return None

        @property
        def size(self):
            return self.b

        def _private(self, f):
            return f

        def __len__(self):
            return 0

        def __repr__(self):
            return "Probe()"

    @functools.lru_cache(maxsize=1)
    def cached(key) -> int:
        return 0

    for obj in (loose, Probe, cached):
        obj.__module__ = module.__name__
    module.loose, module.Probe, module.cached = loose, Probe, cached
    module.__all__ = ["loose", "Probe", "cached"]
    sys.modules[module.__name__] = module
    try:
        found = offenders([module.__name__])
    finally:
        del sys.modules[module.__name__]
    prefix = module.__name__
    assert sorted(found) == sorted(
        [
            f"{prefix}.loose(x)",
            f"{prefix}.loose(args)",
            f"{prefix}.loose(kwargs)",
            f"{prefix}.Probe.__init__(a)",
            f"{prefix}.Probe.method(return)",
            f"{prefix}.Probe.make(d)",
            f"{prefix}.Probe.helper(e)",
            f"{prefix}.Probe.size(return)",
            f"{prefix}.Probe.__len__(return)",
            f"{prefix}.cached(key)",
        ]
    )


def test_the_package_ships_py_typed():
    """PEP 561: the marker exists and the wheel's package data includes it."""
    assert (PACKAGE / "py.typed").is_file()
    with open(ROOT / "pyproject.toml", "rb") as file:
        config = tomllib.load(file)
    package_data = config["tool"]["setuptools"]["package-data"]["kimbalance"]
    assert "py.typed" in package_data
