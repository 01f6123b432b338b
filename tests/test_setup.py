"""setup.sh on an externally-managed Python (PEP 668) and the commands' way back into its .venv/.

The externally-managed case goes through setup.sh's test hooks: a marker file standing in for
<stdlib>/EXTERNALLY-MANAGED, a venv folder under tmp_path, and --system-site-packages, so that pip
finds every pin already installed in this interpreter and installs nothing (checked below)."""

import importlib.util
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from mrnet import runtime

ROOT = Path(__file__).resolve().parents[1]
HOOKS = ("MRNET_SETUP_EXTERNALLY_MANAGED", "MRNET_SETUP_VENV", "MRNET_SETUP_SYSTEM_SITE", "MRNET_SETUP_DRY_RUN")
IN_VENV = sys.prefix != sys.base_prefix
REALLY_MANAGED = (Path(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED").is_file() and not IN_VENV)


def setup_sh(timeout=300, **env):
    """bash setup.sh with PYTHON=this interpreter, no active virtual/conda environment, no hook but env's."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PIP_BREAK_SYSTEM_PACKAGES", "PYTHONPATH", *HOOKS)}
    return subprocess.run(["bash", str(ROOT / "setup.sh")], capture_output=True, text=True, timeout=timeout,
                          env={**base, "PYTHON": sys.executable, **{k: str(v) for k, v in env.items()}})


def managed_line(venv, done="installed into"):
    return f"setup: {sys.executable} is externally managed (PEP 668); {done} {venv}/"


@pytest.mark.skipif(IN_VENV, reason="--system-site-packages from a venv sees the base interpreter's packages, "
                                    "not this one's: pip would download every pin")
def test_externally_managed_python_gets_a_project_venv(tmp_path):
    marker, venv = tmp_path / "EXTERNALLY-MANAGED", tmp_path / "venv"
    marker.write_text("[externally-managed]\nError=use a venv\n")
    start = time.monotonic()
    proc = setup_sh(MRNET_SETUP_EXTERNALLY_MANAGED=marker, MRNET_SETUP_VENV=venv, MRNET_SETUP_SYSTEM_SITE=1)
    took = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    said = [line for line in lines if "externally managed" in line]
    assert len(said) == 1 and said[0].startswith(managed_line(venv)), proc.stdout
    python = venv / "bin" / "python"
    # pip and the import check ran with the venv's python
    assert any(line.startswith("setup: ok  tensorflow") and line.endswith(f"  python {python}") for line in lines), \
        proc.stdout
    assert python.is_file()
    check = subprocess.run([str(python), "-c", "import sys, tensorflow, keras; print(sys.prefix)"],
                           capture_output=True, text=True, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert check.returncode == 0, check.stderr[-2000:]
    assert Path(check.stdout.split()[-1]).resolve() == venv.resolve()  # imported by the venv's own python
    # pip found every pin satisfied: nothing but pip itself went into the venv's own site-packages
    own = {p.name.split("-")[0].lower() for p in venv.glob("lib/python*/site-packages/*")}
    assert not own & {"tensorflow", "keras", "numpy", "pandas", "pytest"}, sorted(own)
    assert took < 120, f"setup.sh took {took:.0f} s: pip installed something"


def test_dry_run_says_where_it_would_install(tmp_path):
    """Dry runs: with the marker it says it would use the venv folder; without it (the usual case: an
    active venv, conda, pyenv, CI) it installs into this very interpreter and makes no venv."""
    if REALLY_MANAGED:
        pytest.skip("this interpreter is itself externally managed: the usual case cannot be tried here")
    marker, venv = tmp_path / "EXTERNALLY-MANAGED", tmp_path / "venv"
    marker.touch()
    proc = setup_sh(MRNET_SETUP_EXTERNALLY_MANAGED=marker, MRNET_SETUP_VENV=venv, MRNET_SETUP_DRY_RUN=1)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"setup: dry run: {sys.executable} is externally managed (PEP 668); would install into {venv}/\n"
    usual = setup_sh(MRNET_SETUP_VENV=venv, MRNET_SETUP_DRY_RUN=1)
    assert usual.returncode == 0, usual.stderr
    assert usual.stdout == f"setup: dry run: would install into {sys.executable}\n"
    # a marker the interpreter does not have is no marker
    absent = setup_sh(MRNET_SETUP_EXTERNALLY_MANAGED=tmp_path / "none", MRNET_SETUP_VENV=venv, MRNET_SETUP_DRY_RUN=1)
    assert absent.stdout == usual.stdout
    # a virtual environment is never externally managed, marker or not (pip's rule)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "env")], check=True, timeout=120)
    python = tmp_path / "env" / "bin" / "python"
    inside = setup_sh(MRNET_SETUP_EXTERNALLY_MANAGED=marker, MRNET_SETUP_VENV=venv, MRNET_SETUP_DRY_RUN=1,
                      PYTHON=python)
    assert inside.stdout == f"setup: dry run: would install into {python}\n", inside.stderr
    assert not venv.exists()


def test_externally_managed_with_an_active_environment_stops(tmp_path):
    marker, venv = tmp_path / "EXTERNALLY-MANAGED", tmp_path / "venv"
    marker.touch()
    proc = setup_sh(MRNET_SETUP_EXTERNALLY_MANAGED=marker, MRNET_SETUP_VENV=venv, VIRTUAL_ENV=tmp_path / "env")
    assert proc.returncode == 1
    assert f"the environment {tmp_path / 'env'} is active" in proc.stderr
    assert not venv.exists()


@pytest.mark.skipif(IN_VENV, reason="the marker only counts outside a virtual environment")
def test_without_ensurepip_one_line_names_the_debian_package(tmp_path):
    """Debian without python3-venv: no ensurepip. Here a shadowing ensurepip that fails to import."""
    marker, venv, shadow = tmp_path / "EXTERNALLY-MANAGED", tmp_path / "venv", tmp_path / "shadow"
    marker.touch()
    (shadow / "ensurepip").mkdir(parents=True)
    (shadow / "ensurepip" / "__init__.py").write_text("raise ImportError('ensurepip is not installed')\n")
    proc = setup_sh(MRNET_SETUP_EXTERNALLY_MANAGED=marker, MRNET_SETUP_VENV=venv, PYTHONPATH=shadow)
    assert proc.returncode == 1, proc.stdout
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert proc.stderr.strip().splitlines() == [
        f"setup: {sys.executable} is externally managed (PEP 668) and cannot make {venv}/ (no venv/ensurepip "
        f"module): install Debian's python3-venv (apt install python{version}-venv), then run bash setup.sh again"]
    assert not venv.exists()


def fake_venv(root):
    python = root / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.touch()
    return python


def test_project_venv_python_decision(tmp_path):
    python = fake_venv(tmp_path)
    assert runtime.project_venv_python(tmp_path, None, sys.prefix) == python
    # TensorFlow importable here: stay
    assert runtime.project_venv_python(tmp_path, importlib.util.find_spec("os"), sys.prefix) is None
    # already that venv's interpreter (a venv without TensorFlow must not loop)
    assert runtime.project_venv_python(tmp_path, None, str(tmp_path / ".venv")) is None
    # no .venv beside the code (the organisers' container, a usual install)
    assert runtime.project_venv_python(tmp_path / "elsewhere", None, sys.prefix) is None
    assert runtime.ROOT == ROOT


def test_use_project_venv_stays_where_tensorflow_is_importable(tmp_path):
    """This interpreter has TensorFlow: nothing happens (were it to exec the fake, not executable,
    python, the call would raise here)."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("this interpreter lacks TensorFlow")
    fake_venv(tmp_path)
    assert runtime.use_project_venv(tmp_path) is None


def test_a_command_without_tensorflow_reruns_under_the_venv(tmp_path):
    """Real processes: a bare venv (no TensorFlow) runs a command that calls use_project_venv(root);
    it comes back under root/.venv/bin/python with the same arguments and environment."""
    bare, root = tmp_path / "bare", tmp_path / "root"
    for where in (bare, root / ".venv"):
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    code = ("import os, sys; sys.path.insert(0, os.environ['SUBMISSION']); from mrnet.runtime import use_project_venv; "
            "use_project_venv(sys.argv[1]); print(sys.prefix, sys.argv[1:], os.environ['MARK'])")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(SUBMISSION=str(ROOT / "submission"), MARK="same-env")
    proc = subprocess.run([str(bare / "bin" / "python"), "-c", code, str(root), "two"], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    prefix, rest = proc.stdout.split(" ", 1)
    assert Path(prefix).resolve() == (root / ".venv").resolve()
    assert rest.strip() == f"{[str(root), 'two']} same-env"
