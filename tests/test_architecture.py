"""The package's import layering, as docs/architecture.md states it.

Each module of `kimbalance` belongs to one layer and imports only modules of
its own layer or below; nobody imports another module's private (`_name`)
objects; package-internal imports sit at module top; the NumPy layers never
touch `keras.ops`, and no module imports a backend (torch, jax, tensorflow)
at module top. These are static checks over the source (no import needed).
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "kimbalance"

# Layer of each module (dotted names relative to the package; a trailing
# ".*" covers a subpackage). Keep in step with docs/architecture.md.
LAYERS = {
    1: ["_validation", "weights"],
    2: ["data.*"],
    3: ["_api", "_env", "_tensors", "losses.*", "layers", "metrics"],
    4: ["thresholds", "callbacks", "plots", "models", "evaluation", "training.*"],
    5: ["distributed", "experiments.*", "__main__"],
}
# Package front doors re-export their layer (or the whole package).
AGGREGATORS = {"__init__"}

NUMPY_ONLY_LAYERS = (1, 2)
BACKENDS = ("torch", "jax", "tensorflow", "jaxlib")


def _module_name(path):
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts)


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _layer_of(name):
    for layer, patterns in LAYERS.items():
        for pattern in patterns:
            if pattern.endswith(".*"):
                prefix = pattern[:-2]
                if name == prefix or name.startswith(prefix + "."):
                    return layer
            elif name == pattern:
                return layer
    return None


def _resolve(name):
    """The layer of an imported `kimbalance.x.y` module (or of its package)."""
    parts = name.split(".")
    while parts:
        layer = _layer_of(".".join(parts))
        if layer is not None:
            return layer
        parts.pop()
    return None


def _kimbalance_imports(tree, path):
    """Yields (node, imported module relative name, imported names, top-level)."""
    top_level = set(map(id, tree.body))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = list(path.relative_to(PACKAGE).parent.parts)
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(["kimbalance", *base, *([module] if module else [])])
            if module == "kimbalance" or module.startswith("kimbalance."):
                names = [a.name for a in node.names]
                rel = module[len("kimbalance."):] if module != "kimbalance" else ""
                # `from kimbalance import weights` imports a module.
                if not rel:
                    for a in names:
                        yield node, a, [], id(node) in top_level
                else:
                    yield node, rel, names, id(node) in top_level
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("kimbalance."):
                    rel = alias.name[len("kimbalance."):]
                    yield node, rel, [], id(node) in top_level


def _parsed():
    for path in _modules():
        name = _module_name(path)
        yield path, name, ast.parse(path.read_text(), filename=str(path))


def test_every_module_has_a_layer():
    missing = [name for _, name, _ in _parsed()
               if name.split(".")[-1] not in AGGREGATORS and _layer_of(name) is None]
    assert not missing, f"modules without a layer in LAYERS: {missing}"


def test_imports_only_go_down():
    violations = []
    for path, name, tree in _parsed():
        if name.split(".")[-1] in AGGREGATORS:
            continue
        own = _layer_of(name)
        for node, target, _, _ in _kimbalance_imports(tree, path):
            layer = _resolve(target)
            if layer is not None and layer > own:
                violations.append(f"{name} (layer {own}) imports {target} "
                                  f"(layer {layer}) at line {node.lineno}")
    assert not violations, "\n".join(violations)


def test_no_private_names_from_other_modules():
    violations = []
    for path, name, tree in _parsed():
        for node, target, names, _ in _kimbalance_imports(tree, path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                violations.append(f"{name} imports {private} from {target} "
                                  f"(line {node.lineno})")
    assert not violations, "\n".join(violations)


def test_package_imports_at_module_top():
    violations = []
    for path, name, tree in _parsed():
        for node, target, _, top in _kimbalance_imports(tree, path):
            if not top and not _inside_type_checking(tree, node):
                violations.append(f"{name} imports {target} inside a function "
                                  f"(line {node.lineno})")
    assert not violations, "\n".join(violations)


def _inside_type_checking(tree, target):
    for node in tree.body:
        if (isinstance(node, ast.If) and isinstance(node.test, ast.Name)
                and node.test.id == "TYPE_CHECKING"):
            if any(child is target for child in ast.walk(node)):
                return True
    return False


@pytest.mark.parametrize("layer", NUMPY_ONLY_LAYERS)
def test_numpy_layers_never_use_keras_ops(layer):
    violations = []
    for _path, name, tree in _parsed():
        if _layer_of(name) != layer:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("keras") and (
                        "ops" in node.module.split(".")
                        or any(a.name == "ops" for a in node.names)):
                    violations.append(f"{name}: line {node.lineno}")
                if layer == 1 and node.module.split(".")[0] == "keras":
                    violations.append(f"{name} (NumPy only): line {node.lineno}")
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if layer == 1 and alias.name.split(".")[0] == "keras":
                        violations.append(f"{name} (NumPy only): line {node.lineno}")
            if (isinstance(node, ast.Attribute) and node.attr == "ops"
                    and isinstance(node.value, ast.Name) and node.value.id == "keras"):
                violations.append(f"{name}: keras.ops at line {node.lineno}")
    assert not violations, "\n".join(violations)


def test_no_backend_or_keras_src_import_at_module_top():
    violations = []
    for _path, name, tree in _parsed():
        for node in tree.body:
            modules = []
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules = [node.module]
            for module in modules:
                root = module.split(".")[0]
                if root in BACKENDS or module.startswith("keras.src"):
                    violations.append(f"{name} imports {module} at line {node.lineno}")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "keras.src"):
                violations.append(f"{name} imports {node.module} (private Keras)")
    assert not violations, "\n".join(violations)


def test_architecture_document_lists_every_layer():
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    for patterns in LAYERS.values():
        for pattern in patterns:
            module = pattern.removesuffix(".*").replace(".", "/")
            assert module in doc, f"docs/architecture.md does not mention {module}"


def test_readme_points_to_no_private_material():
    root = PACKAGE.parent
    for path in [root / "README.md", *sorted((root / "docs").rglob("*.md")),
                 *_modules()]:
        text = path.read_text()
        assert "../shared" not in text, f"{path} points to ../shared"


# One concept per module: a module past this many lines almost always holds
# more than one (split it into a subpackage, as data/samplers/ is).
MAX_MODULE_LINES = 900


def test_modules_stay_small():
    long = {name: len(path.read_text().splitlines()) for path, name, _ in _parsed()}
    long = {name: n for name, n in long.items() if n > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"
