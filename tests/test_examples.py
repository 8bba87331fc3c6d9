"""Each example runs, at a tiny size, from a fresh folder, and writes where .gitignore expects."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import shared_dir

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(tmp_path, name, *args):
    return subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *map(str, args)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)


def is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["single_simulation", "compare_with_ramses"])
def test_default_output_is_ignored_by_git(name):
    """What an example writes by default lies under a folder that .gitignore lists."""
    default = load(name).DEFAULT_OUT
    assert not default.is_absolute()
    ignored = {ln.strip() for ln in (ROOT / ".gitignore").read_text().splitlines()}
    assert f"{default.parts[0]}/" in ignored


def test_single_simulation(tmp_path):
    proc = run(tmp_path, "single_simulation", "--cells", 16, "--n", 4, "--seed", 3)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout[: proc.stdout.rindex("}") + 1])
    assert summary["cells"] == 16 and summary["n"] == 4 and summary["seed"] == 3
    assert summary["mass_error"] < 1e-12
    out = tmp_path / load("single_simulation").DEFAULT_OUT
    assert sorted(p.name for p in out.iterdir()) == [f"log_sigma_{a}.png" for a in "xyz"]
    assert all(is_png(p) for p in out.iterdir())


def test_single_simulation_bad_argument_is_two_lines(tmp_path):
    proc = run(tmp_path, "single_simulation", "--cells", 15)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and "cells" in lines[1] and "15" in lines[1], proc.stderr
    assert not (tmp_path / "example_output").exists()


def test_compare_with_ramses(tmp_path):
    ramses = shared_dir() / "ramses"
    if not ramses.is_dir():
        pytest.skip(f"shared RAMSES outputs not found at {ramses}")
    proc = run(tmp_path, "compare_with_ramses", ramses, "--cases", "burgers64", "--out", tmp_path / "cmp")
    assert proc.returncode == 0, proc.stderr
    line, = proc.stdout.strip().splitlines()
    assert line.startswith("burgers64") and float(line.split("difference/signal")[1].split()[0]) < 1e-8
    assert is_png(tmp_path / "cmp" / "burgers64.png")
