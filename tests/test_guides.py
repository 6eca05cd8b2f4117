"""The guides' code runs: every ```python block of each page, on this backend.

The blocks of one page run in order in one namespace, in a temporary working
directory, as a reader would paste them. Training calls show the epochs a real
run uses; here `epochs=N` runs as `epochs=1` (the guides' data are small, so a
page takes seconds). A block preceded by a `<!-- skip: reason -->` line is not
run (code that needs another machine, e.g. a torch.distributed process group);
such blocks are rare and each states its reason in the marker.
"""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# Pages whose code is prose about the API (the reference is generated from the
# docstrings, whose examples run as doctests) or copied from tools' output.
NOT_GUIDES = {"benchmarks.md", "changelog.md", "architecture.md"}

SKIP_MARKER = "<!-- skip"
_FENCE = re.compile(
    r"^(?P<indent> *)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```\s*$",
    re.M | re.S)
_EPOCHS = re.compile(r"\bepochs=\d+")


def guide_pages():
    pages = [ROOT / "README.md"]
    for path in sorted(DOCS.rglob("*.md")):
        relative = path.relative_to(DOCS)
        if relative.parts[0] in ("reference", "_ext") or str(relative) in NOT_GUIDES:
            continue
        pages.append(path)
    return pages


def python_blocks(text):
    """Returns the (line, code) of each runnable ```python block of `text`."""
    blocks = []
    for match in _FENCE.finditer(text):
        info = match.group("info").strip().split()
        if not info or info[0] not in ("python", "py"):
            continue
        before = text[:match.start()].rstrip().splitlines()
        if before and before[-1].strip().startswith(SKIP_MARKER):
            continue
        indent = len(match.group("indent"))
        code = "\n".join(line[indent:] for line in match.group("body").splitlines())
        blocks.append((text.count("\n", 0, match.start()) + 1, code))
    return blocks


def test_python_blocks_finds_fences_and_honours_the_skip_marker():
    text = ("intro\n```python\nx = 1\n```\n\n<!-- skip: no GPU -->\n"
            "```python\nboom()\n```\n```bash\nmake test\n```\n"
            "  ```python\n  y = x + 1\n  ```\n")
    blocks = python_blocks(text)
    assert [code for _, code in blocks] == ["x = 1", "y = x + 1"]
    assert [line for line, _ in blocks] == [2, 13]


def test_every_guide_has_code():
    empty = [str(p.relative_to(ROOT)) for p in guide_pages()
             if not python_blocks(p.read_text()) and "```bash" not in p.read_text()]
    assert not empty, f"guides without a code block: {empty}"


@pytest.mark.parametrize("page", guide_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_guide_runs(page, tmp_path, monkeypatch):
    blocks = python_blocks(page.read_text())
    if not blocks:
        pytest.skip(f"{page.name} has no python block")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__guide__"}
    for line, code in blocks:
        code = _EPOCHS.sub("epochs=1", code)
        exec(compile(code, f"{page.relative_to(ROOT)}:{line}", "exec"), namespace)
