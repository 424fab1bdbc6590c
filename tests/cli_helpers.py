"""Running the command line in subprocesses against temporary stores, and reading them back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pipeline.config import PROJECT_ROOT

PENALTY_PARAMS = {"l1": {"penalty", "alpha"}, "l2": {"penalty", "alpha"}}
PENALTY_PARAMS["elasticnet"] = {"penalty", "alpha", "l1_ratio"}


def cli(
    store: Path,
    *overrides: str,
    cwd: Path | None = None,
    extra_env: dict | None = None,
    outputs: Path | None = None,
) -> subprocess.Popen:
    args = [
        sys.executable,
        "-m",
        "pipeline",
        f"store_dir={store}",
        f"hydra.run.dir={outputs or store / 'outputs'}",
        *overrides,
    ]
    env = {**os.environ, "PYTHONWARNINGS": "error::FutureWarning", **(extra_env or {})}
    return subprocess.Popen(
        args,
        cwd=cwd or PROJECT_ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def run(store: Path, *overrides: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = cli(store, *overrides, cwd=cwd)
    out, err = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The one line a user error prints: exit 2, no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def client(store: Path):
    from mlflow import MlflowClient

    return MlflowClient(f"sqlite:///{store / 'mlflow.db'}")


def runs_by_role(store: Path) -> dict[str, list]:
    c = client(store)
    exp = c.get_experiment_by_name("regularization")
    runs = c.search_runs([exp.experiment_id], max_results=1000)
    out: dict[str, list] = {"study": [], "trial": []}
    for r in runs:
        out[r.data.tags["pipeline.role"]].append(r)
    return out


def complete_trials(store: Path) -> int:
    import optuna

    url = f"sqlite:///{store / 'optuna.db'}"
    try:
        (summary,) = optuna.get_all_study_summaries(url)
    except (ValueError, Exception):
        return 0
    study = optuna.load_study(study_name=summary.study_name, storage=url)
    return len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
