"""Declared dependency floors are versions the suite runs on: the pins of the lock file."""

from __future__ import annotations

import re
import tomllib

from pipeline.config import PROJECT_ROOT


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_floor_is_the_locked_version_the_suite_runs_on():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    pins = {}
    for line in (PROJECT_ROOT / "conf" / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    for requirement in requirements:
        floor = re.search(r">=\s*([\w.]+)", requirement)
        assert floor, f"{requirement}: no lower bound"
        name = _name(requirement)
        assert pins.get(name) == floor.group(1), (
            f"{requirement}: the lock pins {name}=={pins.get(name)}; "
            "a floor must be a version the suite ran on"
        )
