"""The MLflow UI as a reviewer sees it: a real server, a headless Chromium, a small study."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cli_helpers import run, runs_by_role

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--virtual-time-budget=20000",
]

pytestmark = [
    pytest.mark.e2e,
    # CI installs Chromium (.ci/run); there the test must run, never skip.
    pytest.mark.skipif(
        CHROMIUM is None and os.environ.get("CI") != "true",
        reason="Chromium is not installed (apt-get install chromium)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """A finished small study and the MLflow UI serving its store."""
    store = tmp_path_factory.mktemp("store")
    result = run(store, "search.n_trials=6", "data.noise=20")
    assert result.returncode == 0, result.stderr
    port = _free_port()
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    server = subprocess.Popen(
        [
            str(mlflow_cli),
            "ui",
            "--backend-store-uri",
            f"sqlite:///{store / 'mlflow.db'}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its uvicorn and job consumers are stopped with it
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            break
        except OSError:
            assert time.monotonic() < deadline and server.poll() is None, "the UI did not start"
            time.sleep(0.5)
    (parent,) = runs_by_role(store)["study"]
    yield url, parent
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(30)


def _browse(tmp_path: Path, url: str, *extra: str) -> str:
    assert CHROMIUM, "Chromium is required here (apt-get install chromium)"
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    out = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    return out.stdout


def test_run_page_shows_the_description_and_the_review_artifacts(ui, tmp_path):
    url, parent = ui
    page = f"{url}/#/experiments/{parent.info.experiment_id}/runs/{parent.info.run_id}"
    overview = _browse(tmp_path, page, "--dump-dom")
    assert "Search space" in overview and "Best:" in overview  # the run's description
    assert "l1 α=0.1" in overview  # child runs listed by their readable names
    artifacts = _browse(tmp_path, f"{page}/artifacts", "--dump-dom")
    for name in ("coefficients.png", "regularization_path.png", "validation_curve.png"):
        assert name in artifacts
    shot = tmp_path / "run_page.png"
    _browse(tmp_path, page, "--window-size=1400,1100", f"--screenshot={shot}")
    assert shot.stat().st_size > 20_000


def test_the_summary_links_open_the_studies_and_the_trials_of_one_study(ui, tmp_path):
    """MLflow 3's UI opens an experiment on its GenAI views and pages child runs before
    their parents; the summary's links open the run lists a reviewer wants instead."""
    from mlflow import MlflowClient

    from pipeline.report import runs_url

    url, parent = ui
    experiment, run_id = parent.info.experiment_id, parent.info.run_id
    kind = MlflowClient(url).get_experiment(experiment).tags["mlflow.experimentKind"]
    assert kind == "custom_model_development"  # for clients that read it; 3.17's UI does not
    page = _browse(
        tmp_path, f"{url}/#/experiments/{experiment}?workflowType=machine_learning", "--dump-dom"
    )
    assert parent.info.run_name in page  # the experiment page lists the study
    run_page = f"{url}/#/experiments/{experiment}/runs/{run_id}?workflowType=machine_learning"
    studies = _browse(tmp_path, runs_url(run_page), "--dump-dom")
    assert parent.info.run_name in studies and "Runs" in studies
    assert "trial 0 · " not in studies  # studies only
    trials = _browse(tmp_path, runs_url(run_page, trials_of=run_id), "--dump-dom")
    names = set(re.findall(r"trial (\d+) · (?:l1|l2|elasticnet) α=", trials))
    assert names == {str(n) for n in range(6)}  # every trial, named by its number first
    shot = tmp_path / "trials.png"
    _browse(
        tmp_path,
        runs_url(run_page, trials_of=run_id),
        "--window-size=1400,1000",
        f"--screenshot={shot}",
    )
    assert shot.stat().st_size > 20_000
