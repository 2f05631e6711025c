"""The library/tasks layering and the code-size rules, checked on the source itself.

The library (every ``wnet`` module outside ``wnet.tasks``) takes explicit arguments and never
imports the application layer, W&B or matplotlib at import time; see docs/architecture.md.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

PACKAGE = ROOT / "wnet"
LIBRARY = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for p in PACKAGE.rglob("*.py")
    if "tasks" not in p.relative_to(PACKAGE).parts and p.name != "__main__.py"
)
FORBIDDEN = ("wnet.tasks", "wandb", "matplotlib")
MAX_FUNCTION_LINES = 60


def test_the_library_list_is_complete():
    assert {
        "wnet.model",
        "wnet.ncut",
        "wnet.postprocess.crf",
        "wnet.postprocess.hierarchy",
        "wnet.bsds",
        "wnet.losses",
        "wnet.datasets.paired",
    } <= set(LIBRARY)
    assert not any(m.startswith("wnet.tasks") for m in LIBRARY)


def _loaded_after_import(modules: list[str]) -> list[str]:
    """Import ``modules`` in a fresh interpreter; return the wnet / wandb / matplotlib modules then loaded."""
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('wnet', 'wandb', 'matplotlib'))))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def _forbidden(loaded: list[str]) -> list[str]:
    return [m for m in loaded if m == "wandb" or m.startswith(FORBIDDEN)]


def test_library_modules_import_nothing_of_the_application():
    """Every library module, imported in one fresh interpreter, loads none of the forbidden modules
    (so none of them does on its own); on failure, each module is retried alone to name the culprit."""
    loaded = _loaded_after_import(LIBRARY)
    assert set(LIBRARY) <= set(loaded)
    if _forbidden(loaded):
        culprits = {m: _forbidden(_loaded_after_import([m])) for m in LIBRARY}
        pytest.fail(f"library modules that load {FORBIDDEN}: { {m: b for m, b in culprits.items() if b} }")


def test_the_application_does_import_the_library():
    """The detector above can fail: the tasks layer does load the config tree and the library."""
    loaded = _loaded_after_import(["wnet.tasks.unsupervised", "wnet.tasks.compare"])
    assert "wnet.tasks.config" in loaded and "wnet.ncut" in loaded
    assert "wandb" not in loaded  # W&B itself is imported only when a sink starts


def _functions(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def test_no_function_in_the_package_is_longer_than_60_lines():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for fn in _functions(path):
            n = fn.end_lineno - fn.lineno + 1
            if n > MAX_FUNCTION_LINES:
                long.append(f"{path.relative_to(ROOT)}:{fn.lineno} {fn.name} ({n} lines)")
    assert not long, "functions over 60 lines:\n" + "\n".join(long)


def _touches_the_import_path(path: Path) -> bool:
    """Any use of the interpreter's module search path (``sys`` attribute ``path``) in a file."""
    tree = ast.parse(path.read_text())
    return any(
        isinstance(n, ast.Attribute)
        and n.attr == "path"
        and isinstance(n.value, ast.Name)
        and n.value.id == "sys"
        for n in ast.walk(tree)
    )


def test_no_import_path_edits_anywhere():
    # scripts and tests import the installed package; experiments are loaded by file (helpers.load_script)
    offenders = [
        str(p.relative_to(ROOT))
        for folder in ("wnet", "experiments", "tests")
        for p in (ROOT / folder).rglob("*.py")
        if _touches_the_import_path(p)
    ]
    assert not offenders, offenders


def _task_imports(path: Path, names: set[str]) -> set[str]:
    """The ``wnet.tasks`` modules a file imports when it runs (``if TYPE_CHECKING:`` blocks skipped)."""
    found = set()

    def visit(nodes):
        for n in nodes:
            if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
                continue
            if isinstance(n, ast.ImportFrom) and n.module == "wnet.tasks":
                found.update(a.name for a in n.names if a.name in names)
            elif isinstance(n, ast.ImportFrom) and (n.module or "").startswith("wnet.tasks."):
                found.add(n.module.split(".")[2])
            for child in ("body", "orelse", "finalbody", "handlers"):
                if not isinstance(n, (ast.FunctionDef, ast.ClassDef)) and isinstance(
                    getattr(n, child, None), list
                ):
                    visit(getattr(n, child))

    visit(ast.parse(path.read_text()).body)
    return found


def import_floors() -> dict[str, int]:
    """Each ``wnet.tasks`` module's floor above the library: 1 + the highest floor it imports (1 for
    a module that imports no other task module)."""
    files = {p.stem: p for p in (PACKAGE / "tasks").glob("*.py") if p.stem != "__init__"}
    deps = {m: _task_imports(p, set(files)) - {m} for m, p in files.items()}
    floors: dict[str, int] = {}

    def floor(m: str) -> int:
        if m not in floors:
            floors[m] = 1 + max((floor(d) for d in deps[m]), default=0)
        return floors[m]

    return {m: floor(m) for m in files}


def test_the_tasks_layer_stays_flat():
    # 9 floors before the post-processing refactor (errors < keys < config < build < checkpoints < runtime
    # < loop < unsupervised < compare); the tasks' mains now sit at most 5 floors up, the dispatcher one more
    floors = import_floors()
    mains = {
        m: f for m, f in floors.items() if m in ("unsupervised", "supervised", "segment", "compare", "bsds")
    }
    assert max(mains.values()) <= 6, mains
    assert floors["cli"] == max(floors.values()), floors  # nothing sits above the dispatcher
    assert floors["config"] == floors["errors"] == 1  # the tree and the errors import no task module
