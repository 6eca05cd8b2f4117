"""Griffe extension: read kimbalance's docstrings as their authors meant them.

Two conventions griffe's Google parser does not read by itself:

- Keras-style `Examples:` sections (see `indent_examples`);
- one `Args:` entry for several parameters, `y_true, y_pred: as in dice_loss.`
  (see `split_shared_args`), which it would report as a malformed entry.

Examples sections:

kimbalance's docstrings follow Keras: an `Examples:` header, a blank line,
then doctest lines at the header's own indentation (so `pytest
--doctest-modules` runs them). griffe's Google parser reads only a section's
indented lines, so without this the examples would render as Markdown text.
This indents the body of such a section, up to the next section header
(`References:`, `Raises:`, ...), and griffe then renders it as Python
console blocks.
"""

import re

import griffe

_HEADER = re.compile(r"^(Examples?):\s*$")
_NEXT_SECTION = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")


def indent_examples(text):
    """Returns `text` with the unindented body of its `Examples:` sections indented.

    A section whose first line is already indented is left as it is.
    """
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        out.append(lines[i])
        if not _HEADER.match(lines[i]):
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not _NEXT_SECTION.match(lines[end]):
            end += 1
        body = lines[i + 1:end]
        first = next((line for line in body if line.strip()), "")
        if first and not first.startswith(" "):
            body = ["    " + line if line.strip() else "" for line in body]
        # A blank line right after the header would end the section early.
        while body and not body[0].strip():
            body.pop(0)
        out.extend(body)
        i = end
    return "\n".join(out)


_ARGS_HEADER = re.compile(r"^(Args|Arguments|Parameters):\s*$")
_SHARED_ENTRY = re.compile(r"^([\w*]+(?:\s*,\s*[\w*]+)+)\s*,?\s*:\s+(.*)$")


def split_shared_args(text):
    """Returns `text` with each `a, b, c: description` Args entry split per name.

    Every name gets the whole description, so each parameter has its own row.
    """
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        out.append(lines[i])
        if not _ARGS_HEADER.match(lines[i]):
            i += 1
            continue
        i += 1
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
            end = i + 1
            while end < len(lines) and lines[end].startswith("     "):
                end += 1
            entry = " ".join(line.strip() for line in lines[i:end])
            shared = _SHARED_ENTRY.match(entry) if lines[i].strip() else None
            if shared:
                names = [name.strip() for name in shared.group(1).split(",")]
                out.extend(f"    {name}: {shared.group(2)}" for name in names)
            else:
                out.extend(lines[i:end])
            i = end
    return "\n".join(out)


class DoctestExamples(griffe.Extension):
    """Applies `indent_examples` and `split_shared_args` to every docstring."""

    def on_instance(self, *, node, obj, agent, **kwargs):
        del node, agent, kwargs
        if obj.docstring is not None:
            obj.docstring.value = split_shared_args(
                indent_examples(obj.docstring.value))
