"""The wheel carries agents/, policies/, recipes/ and schemas/, and built-in names resolve from an install."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_wheel_install_resolves_builtin_recipe(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(dist.glob("aidsafe-*.whl"))
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (target / "aidsafe" / "_builtin" / "recipes" / "aidsafe.yaml").is_file()
    # The schemas the built-in YAML files name on their first line resolve inside the install too,
    # and the report's page assets ship with the package.
    builtin = target / "aidsafe" / "_builtin"
    first = (builtin / "recipes" / "train" / "sft.yaml").read_text(encoding="utf-8").split("\n", 1)[0]
    assert (builtin / "recipes" / "train" / first.split("$schema=", 1)[1]).resolve().is_file()
    assert (target / "aidsafe" / "report" / "page.js").is_file() and (
        target / "aidsafe" / "report" / "page.css"
    ).is_file()

    # Run from an empty directory so nothing can come from the source checkout.
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    script = (
        "import aidsafe, sys; from aidsafe.config.resources import resolve_resource; "
        "print(aidsafe.__file__); print(resolve_resource('aidsafe', 'recipes'))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script], cwd=workdir, env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert all(line.startswith(str(target)) for line in shown), shown
    validated = subprocess.run(
        [sys.executable, "-m", "aidsafe", "validate", "aidsafe"], cwd=workdir, env=env, capture_output=True, text=True
    )
    assert validated.returncode == 0, validated.stderr
    assert "ok: recipe aidsafe" in validated.stdout and "policies aidsafe v1.0 (5)" in validated.stdout
