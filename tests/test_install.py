"""One import name: the wheel installs `fpjko` and nothing else at the top level of site-packages, and the
installed package works from any directory (a fresh venv outside the repository, system packages for dolfinx).
Also: pyproject.toml lists every package folder, and the paths the README and the docstrings quote import."""

import ast
import importlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAPPED = {"fpjko": "fpjko", "fpjko.solvers": "solvers", "fpjko.meshes": "meshes", "fpjko.samplers": "samplers",
          "fpjko.demos": "demos"}


def _folders() -> set[str]:
    """Every package folder of the source tree, named as installed."""
    names = set()
    for pkg, top in MAPPED.items():
        for dirpath, dirnames, files in os.walk(os.path.join(ROOT, top)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            if "__init__.py" in files:
                rel = os.path.relpath(dirpath, os.path.join(ROOT, top))
                names.add(pkg if rel == "." else pkg + "." + rel.replace(os.sep, "."))
    return names


def test_pyproject_lists_every_package_folder():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        cfg = tomllib.load(fh)["tool"]["setuptools"]
    assert cfg["package-dir"] == MAPPED
    assert set(cfg["packages"]) == _folders()


def test_wheel_installs_one_top_level_package_that_works_anywhere(tmp_path):
    dist = tmp_path / "dist"
    leftovers = [os.path.join(ROOT, d) for d in ("build", "fpjko.egg-info") if not os.path.exists(os.path.join(ROOT, d))]
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(dist)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    for d in leftovers:                     # the build's own folders, where it made them
        shutil.rmtree(d, ignore_errors=True)
    assert p.returncode == 0, p.stderr[-3000:]
    (wheel,) = dist.glob("fpjko-*.whl")
    with zipfile.ZipFile(wheel) as z:
        tops = {n.split("/")[0] for n in z.namelist()}
        modules = {n for n in z.namelist() if n.endswith(".py")}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"fpjko"}
    assert "fpjko/solvers/fokker_planck/stepper.py" in modules and "fpjko/demos/mantel.py" in modules
    assert not [m for m in modules if "/tests/" in m or "/benchmarks/" in m]

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    py, exe = str(venv / "bin" / "python3"), str(venv / "bin" / "fpjko")
    p = subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["FPJKO_PROGRESS"] = "0"

    def run(*cmd, timeout=300):
        return subprocess.run(list(cmd), cwd=away, env=env, capture_output=True, text=True, timeout=timeout)

    where = run(py, "-c", "import fpjko.solvers, fpjko; print(fpjko.solvers.__file__)")
    assert where.returncode == 0, where.stderr[-2000:]
    assert where.stdout.strip().startswith(str(venv)), where.stdout       # the installed copy, not the checkout
    info = run(exe, "info")
    assert info.returncode == 0 and re.search(r"^dolfinx 0\.(9|10)\.", info.stdout, re.M), info.stderr
    assert run(py, "-m", "fpjko", "demo", "--list").stdout.count("\n") >= 9
    demo = run(exe, "demo", "mantel", "--n", "40", "--flow-n", "8", "--t-end", "2", "--frames", "2", "--no-gif", "--out", str(away / "mantel"), "--quiet",
               timeout=600)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert (away / "mantel" / "config.toml").exists()
    for old in ("solvers", "samplers", "meshes", "demos", "benchmarks"):
        gone = run(py, "-c", f"import {old}")
        assert gone.returncode != 0 and "ModuleNotFoundError" in gone.stderr, old
    bench = run(exe, "bench", "particles")
    assert bench.returncode != 0 and "source checkout" in bench.stderr


# ------------------------------------------------------------------ documented paths import
_DOTTED = re.compile(r"\bfpjko(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def _quoted_paths() -> set[str]:
    """fpjko.X.Y names quoted in README.md, the site's pages (docs/**/*.md) and the package's docstrings."""
    texts = [open(os.path.join(ROOT, "README.md")).read()]
    for dirpath, _, files in os.walk(os.path.join(ROOT, "docs")):
        texts += [open(os.path.join(dirpath, f)).read() for f in files if f.endswith(".md")]
    for top in list(MAPPED.values()):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if f.endswith(".py"):
                    tree = ast.parse(open(os.path.join(dirpath, f)).read())
                    for node in ast.walk(tree):
                        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)):
                            doc = ast.get_docstring(node)
                            if doc:
                                texts.append(doc)
    return {m.rstrip(".") for t in texts for m in _DOTTED.findall(t)}


def _resolves(path: str) -> bool:
    """path is a module, or a module's attribute (possibly nested: fpjko.solvers.X.method)."""
    parts = path.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ModuleNotFoundError:
            continue
        try:
            for name in parts[k:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


def test_every_quoted_path_imports():
    paths = _quoted_paths()
    assert len(paths) > 40                          # the extraction finds the references it is meant to check
    bad = sorted(p for p in paths if not _resolves(p))
    assert not bad, f"quoted but not importable: {bad}"


@pytest.mark.parametrize("old", ["solvers", "samplers", "meshes"])
def test_the_package_never_imports_the_old_top_level_names(old):
    """Inside the checkout `import solvers` would still find the folder: no module of the package, its demos,
    benchmarks or tests may use it (the same file would load twice, under two names)."""
    pat = re.compile(rf"^\s*(from|import)\s+{old}\b", re.M)
    offenders = []
    for top in ("fpjko", "solvers", "meshes", "samplers", "demos", "benchmarks", "tests"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if f.endswith(".py") and pat.search(open(os.path.join(dirpath, f)).read()):
                    offenders.append(os.path.relpath(os.path.join(dirpath, f), ROOT))
    assert not offenders
