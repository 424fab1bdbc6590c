"""The layout of ``pipeline/``, checked rather than hoped for (see DESIGN.md).

Public APIs only (no private module, name or attribute of the libraries we combine, no
calls of an Optuna storage's trial-writing methods, no SQL on MLflow's or Optuna's
tables), modules of at most 300 lines and functions of at most 50, each library behind
its one module, and no import cycle. Everything is read from the source with ``ast``:
nothing here imports the pipeline.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PIPELINE = Path(__file__).resolve().parent.parent / "pipeline"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50

# The only modules that may import each library (module names inside pipeline/).
TRACKING_MODULES = {"tracking", "trial_log", "model_store", "inputs"}  # mlflow
SEARCH_MODULES = {"search", "study", "storage", "trials"}  # optuna
CONFIG_MODULES = {"__main__", "config", "data_config"}  # hydra, omegaconf
BOUNDARIES = {
    "mlflow": TRACKING_MODULES,
    "optuna": SEARCH_MODULES,
    "hydra": CONFIG_MODULES,
    "omegaconf": CONFIG_MODULES,
}

LIBRARIES = {
    "mlflow",
    "optuna",
    "sklearn",
    "scipy",
    "hydra",
    "omegaconf",
    "sqlalchemy",
    "pandas",
    "numpy",
}
# Documented names with a leading underscore (namedtuple's, Enum's): ruff's SLF001 defaults.
PUBLIC_UNDERSCORED = {"_make", "_asdict", "_replace", "_fields", "_field_defaults"}
PUBLIC_UNDERSCORED |= {"_name_", "_value_", "_exit"}
# Optuna's protocol between a Study and its storage: not for users.
STORAGE_WRITES = {
    "set_trial_state_values",
    "create_new_trial",
    "set_trial_param",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "set_trial_intermediate_value",
    "record_heartbeat",
}
# The stores' own schema and SQL layer: writing through them is SQL on their tables.
STORE_INTERNALS = (
    "mlflow.store.db",
    "mlflow.store.tracking.dbmodels",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.dbmodels",
    "mlflow.store.model_registry.sqlalchemy_store",
)
# Tables of MLflow's and Optuna's stores; SQL naming one is SQL on their schema.
FOREIGN_TABLES = {
    "trial_heartbeats",
    "latest_metrics",
    "trials",
    "trial_params",
    "trial_values",
    "trial_intermediate_values",
    "trial_user_attributes",
    "trial_system_attributes",
    "studies",
    "study_directions",
    "runs",
    "metrics",
    "params",
    "tags",
    "experiments",
    "model_versions",
    "registered_models",
    "logged_models",
}
DISTINCT_TABLES = re.compile(r"\b(trial_heartbeats|latest_metrics)\b", re.IGNORECASE)
SQL_ON_TABLE = re.compile(
    r"\b(?:from|into|update|join|table)\s+[\"`]?(" + "|".join(sorted(FOREIGN_TABLES)) + r")\b",
    re.IGNORECASE,
)
TEXT_ON_TABLE = re.compile(r"\b(trials|runs)\b", re.IGNORECASE)


def _modules() -> dict[str, Path]:
    return {path.stem: path for path in sorted(PIPELINE.glob("*.py"))}


MODULES = _modules()


def _tree(name: str) -> ast.Module:
    path = MODULES[name]
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _where(name: str, node: ast.AST) -> str:
    return f"pipeline/{name}.py:{node.lineno}"


def _imports(tree: ast.AST) -> list[tuple[ast.stmt, str, list[str]]]:
    """Every absolute import, anywhere: (node, module path, names imported from it)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node, node.module, [alias.name for alias in node.names]))
    return found


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _private_imports(name: str, tree: ast.Module) -> list[str]:
    bad = []
    for node, module, names in _imports(tree):
        parts = module.split(".")
        if parts[0] not in LIBRARIES:
            continue
        if any(_is_private(p) for p in parts):
            bad.append(f"{_where(name, node)}: imports private module {module}")
        elif module.startswith(STORE_INTERNALS) or any(
            f"{module}.{n}".startswith(STORE_INTERNALS) for n in names
        ):
            bad.append(f"{_where(name, node)}: imports the store's tables from {module}")
        bad += [
            f"{_where(name, node)}: imports private name {n} from {module}"
            for n in names
            if _is_private(n)
        ]
    return bad


def _private_attributes(name: str, tree: ast.Module) -> list[str]:
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not _is_private(node.attr):
            continue
        if node.attr in PUBLIC_UNDERSCORED:
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
            continue
        if isinstance(owner, ast.Call) and getattr(owner.func, "id", None) == "super":
            continue
        bad.append(f"{_where(name, node)}: {ast.unparse(node)}")
    return bad


def _storage_writes(name: str, tree: ast.Module) -> list[str]:
    return [
        f"{_where(name, node)}: calls a storage's {node.func.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in STORAGE_WRITES
    ]


def _docstrings(tree: ast.Module) -> set[int]:
    """Ids of the string constants that are statements (docstrings, comments-as-strings)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def _text_of(node: ast.AST) -> str:
    """The literal text of a string or f-string (its formatted parts left out)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text_of(v) for v in node.values)
    return ""


def _sqlalchemy_text_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Names bound to ``sqlalchemy.text``, and names bound to the ``sqlalchemy`` module."""
    functions, modules = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "sqlalchemy":
            functions |= {a.asname or a.name for a in node.names if a.name == "text"}
        elif isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name == "sqlalchemy"}
    return functions, modules


def _foreign_sql(name: str, tree: ast.Module) -> list[str]:
    bad = []
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if id(node) in skip or not isinstance(node, ast.Constant | ast.JoinedStr):
            continue
        text = _text_of(node)
        match = DISTINCT_TABLES.search(text) or SQL_ON_TABLE.search(text)
        if match:
            bad.append(f"{_where(name, node)}: SQL on {match.group(1)!r}: {text[:60]!r}")
    functions, modules = _sqlalchemy_text_names(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        is_text = (isinstance(func, ast.Name) and func.id in functions) or (
            isinstance(func, ast.Attribute)
            and func.attr == "text"
            and isinstance(func.value, ast.Name)
            and func.value.id in modules
        )
        match = is_text and TEXT_ON_TABLE.search(_text_of(node.args[0]))
        if match:
            bad.append(f"{_where(name, node)}: sqlalchemy.text on {match.group(1)!r}")
    return sorted(set(bad))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_public_apis_only(name):
    tree = _tree(name)
    bad = (
        _private_imports(name, tree)
        + _private_attributes(name, tree)
        + _storage_writes(name, tree)
        + _foreign_sql(name, tree)
    )
    assert not bad, "private use of a library:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_and_functions_are_small(name):
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    bad = [f"pipeline/{name}.py: {lines} lines > {MAX_MODULE_LINES}"] * (lines > MAX_MODULE_LINES)
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                bad.append(f"{_where(name, node)}: {node.name} is {length} lines")
    assert not bad, (
        f"over {MAX_MODULE_LINES} lines a module or {MAX_FUNCTION_LINES} a function:\n"
        + "\n".join(bad)
    )


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_library_behind_its_module(name):
    bad = [
        f"{_where(name, node)}: imports {module} (only {', '.join(sorted(BOUNDARIES[top]))})"
        for node, module, _ in _imports(_tree(name))
        if (top := module.split(".")[0]) in BOUNDARIES and name not in BOUNDARIES[top]
    ]
    assert not bad, "import across a boundary:\n" + "\n".join(bad)


def _runtime_statements(body: list[ast.stmt]):
    """Statements run on import: not function bodies, not ``if TYPE_CHECKING:`` blocks."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from _runtime_statements(node.orelse)
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            yield from _runtime_statements(getattr(node, field, []))


def _module_imports(name: str) -> set[str]:
    """The pipeline modules ``name`` imports when it is imported."""
    found = set()
    for node in _runtime_statements(_tree(name).body):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("pipeline.")}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if (node.level == 0 and module == "pipeline") or (node.level == 1 and not module):
                found |= {a.name for a in node.names}
            elif node.level == 0 and module.startswith("pipeline."):
                found.add(module.split(".")[1])
            elif node.level == 1:
                found.add(module.split(".")[0])
    return found & set(MODULES)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component that has one."""
    cycles, done = [], set()
    for start in sorted(graph):
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    cycle = [*path, start]
                    if not set(cycle) <= done:
                        cycles.append(cycle)
                        done |= set(cycle)
                    stack.clear()
                    break
                if nxt not in seen and nxt not in done:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return cycles


def test_no_import_cycle():
    graph = {name: _module_imports(name) - {name} for name in MODULES}
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checks_catch_what_they_are_for():
    source = '''
import optuna.storages._heartbeat
from sklearn.linear_model import _cd_fast
from mlflow.store.tracking import dbmodels
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from sqlalchemy import text

def f(client, storage, trial, conn):
    """Mentions trial_heartbeats in a docstring: fine."""
    client._tracking_client.store
    storage.set_trial_state_values(trial._trial_id, None)
    conn.execute(text("DELETE FROM trial_heartbeats WHERE trial_id = 1"))
    conn.execute(text(f"select run_uuid from runs where x = {1}"))
    return self._ok, super()._ok, trial.__dict__, trial._replace()
'''
    tree = ast.parse(source)
    found = "\n".join(
        _private_imports("x", tree)
        + _private_attributes("x", tree)
        + _storage_writes("x", tree)
        + _foreign_sql("x", tree)
    )
    for expected in (
        "private module optuna.storages._heartbeat",
        "private name _cd_fast from sklearn.linear_model",
        "x.py:4: imports the store's tables from mlflow.store.tracking",
        "tables from mlflow.store.tracking.sqlalchemy_store",
        "client._tracking_client",
        "trial._trial_id",
        "set_trial_state_values",
        "SQL on 'trial_heartbeats'",
        "SQL on 'runs'",
        "sqlalchemy.text on 'runs'",
    ):
        assert expected in found
    assert "_ok" not in found and "__dict__" not in found and "_replace" not in found
    assert "x.py:9:" not in found  # the docstring
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
