"""The shape of the code: generic code never names a model family, and genrec has no import cycle."""

import ast
import re
from pathlib import Path

import pytest

from genrec.models.families import FAMILIES

ROOT = Path(__file__).resolve().parents[1]
# Config loading is generic too, but `cfgan` is also the name of a data format (the CFGAN authors' files).
GENERIC = [*sorted((ROOT / "flows").glob("*.py")),
           *(ROOT / "genrec" / name for name in ("cli.py", "pipeline.py", "registry.py", "serving.py", "batch.py",
                                                 "training.py", "dataset.py", "evaluation.py", "reporting.py"))]


@pytest.mark.parametrize("path", GENERIC, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_generic_code_names_no_family(path):
    """No family's name as a word in code or strings, docstrings and comments aside."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    methods = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)
               and isinstance(node.func, ast.Attribute)}  # `.pop()` is a dict's, not the family's
    words = re.compile(r"\b(" + "|".join(map(re.escape, FAMILIES)) + r")\b", re.IGNORECASE)
    found = []
    for node in ast.walk(tree):
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value
        elif isinstance(node, ast.Name):
            text = node.id
        elif isinstance(node, ast.Attribute) and id(node) not in methods:
            text = node.attr
        elif isinstance(node, (ast.alias,)):
            text = node.name
        if text and words.search(text.replace("_", " ")):
            found.append((getattr(node, "lineno", "?"), text[:60]))
    assert not found, found


def _imports(path: Path, package: str) -> set[str]:
    """Every genrec module `path` imports at run time (at module level or inside functions; not
    under `if TYPE_CHECKING:`)."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
               for n in ast.walk(node)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith(package)}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(package):
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_no_import_cycle_inside_genrec():
    modules = {}
    for path in (ROOT / "genrec").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {name: {m for m in _imports(path, "genrec") if m in modules and m != name} for name, path in modules.items()}
    cycles = []

    def visit(node, stack, done):
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in done:
            return
        stack.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt, stack, done)
        stack.pop()
        done.add(node)

    done: set[str] = set()
    for name in sorted(graph):
        visit(name, [], done)
    assert not cycles, cycles
