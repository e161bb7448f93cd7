"""`jupyter accel` on a clean install: only the project's declared dependencies importable.

Building a fresh virtual environment from PyPI takes minutes and the network; instead every
installed distribution outside the closure of jupyterlab-accel's declared (non-extra)
dependencies is made unimportable in the child processes, through a sitecustomize on their path.
That is what a clean `pip install jupyterlab-accel` leaves importable (numpy and torch not).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from tests.support.procs import REPO


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_closure(root: str = "jupyterlab-accel") -> set[str]:
    """Normalized names of `root` and everything its non-extra requirements pull in."""
    env = {**default_environment(), "extra": ""}
    seen, todo = set(), [root]
    while todo:
        name = _norm(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate(env):
                todo.append(req.name)
    return seen


def absent_modules() -> set[str]:
    """Top-level modules provided only by distributions a clean install would not have."""
    keep = declared_closure()
    out = set()
    for module, dists in metadata.packages_distributions().items():
        if module.isidentifier() and not any(_norm(d) in keep for d in dists):
            out.add(module)
    return out


@pytest.fixture(scope="module")
def clean_env(tmp_path_factory):
    absent = absent_modules()
    assert {"numpy", "pandas", "boto3"} <= absent and "tornado" not in absent
    d = tmp_path_factory.mktemp("clean")
    (d / "sitecustomize.py").write_text(
        "import sys\n"
        f"_ABSENT = frozenset({sorted(absent)!r})\n"
        "class _NotInstalled:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in _ABSENT:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, _NotInstalled())\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(d), str(REPO)])
    return env


def run(cmd, env):
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=REPO)


def test_the_environment_really_lacks_numpy(clean_env):
    p = run([sys.executable, "-c", "import numpy"], clean_env)
    assert p.returncode != 0 and "No module named 'numpy'" in p.stderr


@pytest.mark.parametrize(
    "args, shown",
    [
        (["--help"], "bench-runtimes"),
        (["bench-runtimes", "--help"], "--runtimes"),
    ],
)
def test_jupyter_accel_help_works(clean_env, args, shown):
    p = run([sys.executable, "-m", "jupyter", "accel", *args], clean_env)
    assert p.returncode == 0, p.stderr[-2000:]
    assert shown in p.stdout and "Traceback" not in p.stderr


def test_unknown_command_is_a_usage_error(clean_env):
    p = run([sys.executable, "-m", "jupyter", "accel", "nope"], clean_env)
    assert (
        p.returncode == 2 and "unknown command 'nope'" in p.stderr and "bench-runtimes" in p.stderr
    )


def test_training_without_numpy_says_what_to_install(clean_env):
    script = str(REPO / "jupyterlab_accel" / "bench_cnn.py")
    p = run([sys.executable, script, "--samples", "64"], clean_env)
    assert p.returncode != 0 and "pip install numpy" in p.stderr
