"""The wheel carries every subpackage (engine/, tasks/, finetune/ mapped into the
``constrained`` namespace), the recipes and the shipped models, and imports from outside
the repository."""

import os
import site
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (whl,) = out.glob("constrained-*.whl")
    return whl


def test_wheel_maps_folders_into_one_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for mod in ("constrained/solver.py", "constrained/engine/noise.py", "constrained/tasks/sudoku.py",
                "constrained/constraints/sums.py",
                "constrained/finetune/diffusion_trainer.py", "constrained/finetune/recipes/sudoku.toml"):
        assert mod in names, mod
    assert not any(n.startswith(("engine/", "tasks/", "finetune/")) for n in names)
    if (ROOT / "constrained/models/sudoku/model.safetensors").exists():
        assert "constrained/models/sudoku/model.safetensors" in names
    assert not any("checkpoints" in n for n in names)


def dependency_paths() -> list[str]:
    """Where the running interpreter finds its dependencies (torch, transformers, ...): its
    site-packages folders, whether it is a venv, a venv with system site packages, or the system."""
    paths = [*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    paths += [p for p in sys.path if p.rstrip("/").endswith(("site-packages", "dist-packages"))]
    return list(dict.fromkeys(p for p in paths if Path(p).is_dir()))


def test_wheel_installs_in_fresh_venv_and_imports_from_outside(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    # a venv of its own (not the system's site packages, which need not hold torch), that sees the
    # dependencies of the interpreter running the tests through a .pth of plain paths: an editable
    # install of this repository there is not seen (its finder lives in a .pth that is not run)
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "_test_dependencies.pth").write_text("\n".join(dependency_paths()) + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                        "--no-index", str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (env_dir / "bin" / "constrained").exists()  # the console script
    code = ("import constrained, constrained.engine, constrained.tasks, constrained.finetune, "
            "constrained.finetune.recipes, constrained.tasks.sudoku;"
            "print(constrained.__file__); print(constrained.list_tasks())")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # -I: isolated mode, so neither the repository nor an editable install on sys.path can answer
    r = subprocess.run([str(py), "-I", "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert str(env_dir) in r.stdout.splitlines()[0]
    assert "sudoku" in r.stdout
    assert "n-queens" in r.stdout  # registered by the wheel's entry_points.txt alone
    # the console script answers from the wheel, without torch, and lists every command
    r = subprocess.run([str(env_dir / "bin" / "constrained"), "--help"], capture_output=True, text=True,
                       cwd=tmp_path, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    for command in ("tasks", "solve", "trace", "batch", "finetune", "bench"):
        assert command in r.stdout
