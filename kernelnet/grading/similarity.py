"""Identical and near-identical submissions: a digest of a submission's code that ignores
what copying usually changes.

Each ``.py`` file is parsed (``ast.parse``: nothing is executed), its docstrings dropped and
every name the file binds itself (functions, arguments, variables, classes) renamed by order
of first appearance, so comments, blank lines, spacing, quotes, docstrings and renamed
variables leave the digest unchanged, while any change to what the code does (an operator, a
constant, a call, an imported name) changes it. A file that does not parse is hashed as text
with its whitespace removed. Notebooks contribute their code cells.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import json
from pathlib import Path

from kernelnet.safe_read import read_text

MAX_FILE_BYTES = 2 * 2**20
_BUILTINS = frozenset(dir(builtins))


class _Renamer(ast.NodeTransformer):
    """Names bound in the file become ``v0, v1, ...``; attributes, imported modules and
    builtins keep theirs (``np.dot`` stays ``np.dot`` only if ``np`` is imported as such)."""

    def __init__(self, bound: set[str]):
        self.bound = bound
        self.names: dict[str, str] = {}

    def _new(self, name: str) -> str:
        if name not in self.bound or name in _BUILTINS:
            return name
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_Name(self, node: ast.Name) -> ast.AST:  # noqa: N802 (ast's names)
        node.id = self._new(node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = self._new(node.arg)
        node.annotation = None
        return node

    def _named(self, node):
        node.name = self._new(node.name)
        node.body = _without_docstring(node.body)
        if hasattr(node, "returns"):
            node.returns = None
        self.generic_visit(node)
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _named  # noqa: N815


def _without_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        if isinstance(first.value.value, str):
            return body[1:] or [ast.Pass()]
    return body


def _bound_names(tree: ast.AST) -> set[str]:
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
    return bound


def normalized_code(source: str) -> str:
    """The text the digest hashes: the file's structure with its own names renamed."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "unparsed:" + "".join(source.split())
    tree.body = _without_docstring(tree.body)
    try:
        tree = _Renamer(_bound_names(tree)).visit(tree)
        return ast.dump(tree, annotate_fields=False, include_attributes=False)
    except RecursionError:
        return "unparsed:" + "".join(source.split())


def notebook_code(text: str) -> str:
    """A notebook's code cells joined, magics and shell lines left out ("" if unreadable)."""
    try:
        cells = json.loads(text).get("cells", [])
        sources = [
            c["source"] if isinstance(c["source"], str) else "".join(c["source"])
            for c in cells
            if isinstance(c, dict) and c.get("cell_type") == "code"
        ]
    except (ValueError, AttributeError, KeyError, TypeError, RecursionError):
        return ""
    lines = [
        line for s in sources for line in s.splitlines() if not line.lstrip().startswith(("%", "!"))
    ]
    return "\n".join(lines)


def submission_digest(folder: Path) -> str:
    """sha256 over the normalized code of every top-level ``.py`` and ``.ipynb`` file of
    ``folder``, by file name; "" when it holds none."""
    parts = []
    for path in sorted(Path(folder).iterdir()):
        if path.name.startswith(".") or path.suffix not in (".py", ".ipynb"):
            continue
        try:
            text = read_text(path, MAX_FILE_BYTES, folder)
        except (OSError, ValueError):
            continue
        code = notebook_code(text) if path.suffix == ".ipynb" else text
        parts.append(f"{path.name}\0{normalized_code(code)}")
    if not parts:
        return ""
    return hashlib.sha256("\0\0".join(parts).encode()).hexdigest()
