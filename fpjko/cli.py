"""The `fpjko` command.

    fpjko info                      versions of dolfinx, PETSc (and its solver packages), numpy, python
    fpjko demo --list               the demos, one line each
    fpjko demo NAME [options]       run a demo; `fpjko demo NAME --help` lists its options
    fpjko bench --list | NAME [options]
    fpjko validate MODEL.toml [--ns N ...] [--t T] [--repeats R] [--dt DT] [--h H] [--force F] [--out DIR]
                          [-n RANKS] [--quiet]
                                    a model's particles against its PDE with fitted rates (fpjko.model); its
                                    progress on stderr; any failure is one `error:` line
    fpjko chaos RUNS.npz [--marginals a0 u0] [--theory -0.5] [--out DIR]
                                    pairs of runs from any trainer against each other: distances and slopes in
                                    the width N (fpjko.model.chaos; the file format is in its doc)

Options of `demo` and `bench`, before or among the program's own:
    --config FILE.toml   the program's parameters as a TOML table (t_end = 0.1 for --t-end 0.1, booleans for
                         flags, arrays for lists, a [petsc] table for PETSc options); the command line wins
    -n N, --np N         run under mpirun -n N
    --quiet              no progress bar (it is also off when stderr is not a terminal)
A demo's effective parameters are written to OUT/config.toml (OUT its --out), so `fpjko demo NAME --config
OUT/config.toml` repeats the run. PETSc options (one dash, e.g. -dw_ksp_type gmres) pass through intact;
unknown options are errors.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys

_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
GLOBAL_PETSC = ("log_view", "info", "options_left", "options_view", "help", "malloc_debug", "malloc_view",
                "on_error_abort", "log_trace", "start_in_debugger", "no_signal_handler", "memory_view")
DEMOS = ("aggregation", "digits", "double_well", "jko_geodesic", "jko_vs_pde", "mantel", "mean_field_network", "particles_vs_fe",
         "phase_transition", "sgd_not_gibbs", "wide_minima")
BENCHES = ("fp_scaling", "jko_newton", "jko", "interaction", "kernels", "ou_vs_fd", "particles", "deep_relaxation",
           "front_door", "digits", "jko_spacetime")


def split_petsc(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """Separate PETSc options (`-name value`, `-name=value`, `-flag`: one dash) from the rest.
    A value is the next token unless that is an option itself (negative numbers are values)."""
    rest, opts, i = [], {}, 0
    while i < len(argv):
        tok = argv[i]
        if tok.startswith("-") and not tok.startswith("--") and len(tok) > 1 and tok[1].isalpha() and tok != "-h":
            name, eq, value = tok[1:].partition("=")
            if not eq:
                nxt = argv[i + 1] if i + 1 < len(argv) else None
                if nxt is not None and (not nxt.startswith("-") or _NUMBER.match(nxt)):
                    value, i = nxt, i + 1
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
                raise SystemExit(f"error: malformed PETSc option {tok!r}")
            opts[name] = value
        else:
            rest.append(tok)
        i += 1
    return rest, opts


def script_args(argv=None) -> list[str]:
    """The program's arguments: argv, else the command line's; none when it runs as a notebook (in a Jupyter
    kernel sys.argv holds the kernel's own arguments), so a literate demo runs with its defaults there."""
    if argv is not None:
        return list(argv)
    return [] if "ipykernel" in sys.modules else list(sys.argv[1:])


def parse_args(parser: argparse.ArgumentParser, argv=None, petsc_prefixes: tuple = ()) -> argparse.Namespace:
    """Parse a demo's command line strictly: an unknown or misspelled flag (say --t_end for --t-end)
    is an error naming it. With petsc_prefixes, one-dash options go to the PETSc options database
    with their values (`-dw_ksp_type gmres` or `-dw_ksp_type=gmres`); an option under no listed
    prefix (and not a global PETSc option such as -log_view) is an error, not silently unused."""
    argv = script_args(argv)
    if petsc_prefixes:
        argv, opts = split_petsc(argv)
        bad = [k for k in opts if not k.startswith(tuple(petsc_prefixes)) and k not in GLOBAL_PETSC]
        if bad:
            parser.error(f"PETSc option(s) {', '.join('-' + b for b in bad)} match no solver of this program "
                         f"(prefixes {', '.join(repr(p) for p in petsc_prefixes)})")
        from petsc4py import PETSc

        db = PETSc.Options()
        for k, v in opts.items():
            db.setValue(k, v if v != "" else None)
    a = parser.parse_args(argv)
    return a


def info() -> None:
    import dolfinx
    import numpy
    from petsc4py import PETSc

    import fpjko

    print(f"fpjko {fpjko.__version__} ({os.path.dirname(os.path.abspath(fpjko.__file__))})")
    print(f"dolfinx {dolfinx.__version__} (adios2: {dolfinx.common.has_adios2})")
    print("PETSc {}.{}.{}".format(*PETSc.Sys.getVersion()), "scalar", PETSc.ScalarType.__name__)
    print("PETSc packages:", ", ".join(p for p in ("mumps", "superlu_dist", "hypre") if PETSc.Sys.hasExternalPackage(p)))
    print(f"numpy {numpy.__version__}, python {sys.version.split()[0]}")


# ---------------------------------------------------------------------------------------------- config
def config_to_argv(path: str) -> list[str]:
    """A TOML file -> command-line tokens: key = value -> --key value (underscores become dashes), true -> --key,
    false -> nothing, arrays -> --key v1 v2 ..., a [petsc] table -> -name value."""
    import tomllib

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as e:
        raise SystemExit(f"error: cannot read the config file {path!r}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise SystemExit(f"error: {path!r} is not valid TOML: {e}") from None
    out = []
    for key, value in data.items():
        if key == "petsc":
            if not isinstance(value, dict):
                raise SystemExit(f"error: {path!r}: 'petsc' must be a table of PETSc options")
            for k, v in value.items():
                out += [f"-{k}"] + ([] if v is True else [_fmt(v)])
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, dict):
            raise SystemExit(f"error: {path!r}: unexpected table [{key}] (only [petsc] is one)")
        if value is True:
            out.append(flag)
        elif value is False:
            continue
        elif isinstance(value, list):
            out += [flag, *map(_fmt, value)]
        else:
            out += [flag, _fmt(value)]
    return out


def _fmt(v) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def namespace_to_toml(ns: argparse.Namespace, petsc: dict) -> str:
    """The effective parameters as TOML (readable back by config_to_argv)."""
    lines = []
    for key, value in sorted(vars(ns).items()):
        if value is None:
            continue
        lines.append(f"{key} = {_toml_value(value)}")
    if petsc:
        lines += ["", "[petsc]"] + [f"{k} = {_toml_value(v if v != '' else True)}" for k, v in sorted(petsc.items())]
    return "\n".join(lines) + "\n"


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------------------------------------- commands
def _common(argv: list[str]) -> tuple[list[str], dict]:
    """Take --config, -n/--np, --quiet out of argv (anywhere); the config's tokens go first."""
    rest, opts, i = [], {"np": None, "config": None, "quiet": False}, 0
    while i < len(argv):
        tok = argv[i]
        if tok in ("-n", "--np", "--config"):
            if i + 1 >= len(argv):
                raise SystemExit(f"error: {tok} needs a value")
            opts["config" if tok == "--config" else "np"] = argv[i + 1]
            i += 2
            continue
        if tok.startswith("--config=") or tok.startswith("--np="):
            k, _, v = tok[2:].partition("=")
            opts[k] = v
        elif tok == "--quiet":
            opts["quiet"] = True
        else:
            rest.append(tok)
        i += 1
    if opts["np"] is not None:
        try:
            opts["np"] = int(opts["np"])
            assert opts["np"] >= 1
        except (ValueError, AssertionError):
            raise SystemExit(f"error: -n/--np needs a positive integer, got {opts['np']!r}") from None
    if opts["config"]:
        rest = config_to_argv(opts["config"]) + rest
    return rest, opts


def run_mpirun(cmd: list[str]) -> int:
    """Run an mpirun command, its stderr passed through line by line but for the launcher's own report of a rank
    that exited non-zero and its teardown messages (the ranks' `error:` line already says why): its exit code."""
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, bufsize=1)
    block = []
    for line in p.stderr:
        line = line.replace("\0", "")                     # the launcher's forwarding can prefix a NUL
        if "PMIX_ERR_UNREACH" in line:                     # its teardown after a rank exited non-zero
            continue
        if block or line.startswith("-----"):
            block.append(line)
            if len(block) > 1 and line.startswith("-----"):
                text = "".join(block)
                if "exited with non-zero status" not in text and "non-zero exit code" not in text:
                    sys.stderr.write(text)
                block = []
            continue
        sys.stderr.write(line)
        sys.stderr.flush()
    sys.stderr.write("".join(block))
    return p.wait()


def _mpirun(np_: int, kind: str, name: str, argv: list[str], quiet: bool) -> int:
    cmd = ["mpirun", "-n", str(np_), sys.executable, "-m", "fpjko.cli", kind, name, *argv] + (["--quiet"] if quiet else [])
    return run_mpirun(cmd)


def _package(kind: str) -> str:
    """The package that holds a kind's programs: fpjko.demos (installed), benchmarks (a source checkout only)."""
    if kind == "demo":
        return "fpjko.demos"
    try:
        importlib.import_module("benchmarks")
    except ModuleNotFoundError:
        top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        if not os.path.isfile(os.path.join(top, "benchmarks", "__init__.py")):
            raise SystemExit("error: the benchmarks are not installed with the package; run `fpjko bench` "
                             "from a source checkout (benchmarks/ beside fpjko/)") from None
        sys.path.insert(0, top)
    return "benchmarks"


def description(name: str, package: str = "fpjko.demos") -> str:
    """PACKAGE.NAME's docstring, or a literate script's first markdown cell as plain text (its --help); read
    from the file, by name (listing imports no program, and a notebook has no __file__)."""
    import ast
    import importlib.util

    path = importlib.util.find_spec(f"{package}.{name}").origin
    with open(path) as fh:
        src = fh.read()
    doc = ast.get_docstring(ast.parse(src))
    if doc:
        return doc
    lines, inside = [], False
    for line in src.splitlines():
        if line.startswith("# %% [markdown]"):
            if inside:
                break
            inside = True
            continue
        if inside:
            if line.startswith("# %%") or not line.startswith("#"):
                break
            lines.append(line[2:] if line.startswith("# ") else "")
    return "\n".join(lines).strip()


def _summary(package: str, name: str) -> str:
    """The first line of description(): the docstring's, or the literate script's title."""
    text = description(name, package)
    return text.splitlines()[0].lstrip("#").strip() if text else ""


def _program(kind: str, argv: list[str], names, package: str):
    """The front shared by `fpjko demo` and `fpjko bench`: help, --list, the program's name, the common options
    (--quiet, --config, -n/--np: the run goes to mpirun). Returns (exit code, None) when that settles the command,
    else (None, (module, argv))."""
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0, None
    if argv[0] == "--list":
        print(f"{'demos' if kind == 'demo' else 'benchmarks'} (fpjko {kind} NAME --help for options):")
        for n in names:
            print(f"  {n:<20} {_summary(package, n)}")
        return 0, None
    name, argv = argv[0], argv[1:]
    if name not in names:
        what = "demo" if kind == "demo" else "benchmark"
        raise SystemExit(f"error: unknown {what} {name!r}; fpjko {kind} --list shows them ({', '.join(names)})")
    argv, opts = _common(argv)
    if opts["quiet"]:
        os.environ["FPJKO_PROGRESS"] = "0"
    if opts["np"] and opts["np"] > 1:
        return _mpirun(opts["np"], kind, name, argv, opts["quiet"]), None
    return None, (importlib.import_module(f"{package}.{name}"), argv)


def demo(argv: list[str]) -> int:
    code, run = _program("demo", argv, DEMOS, _package("demo"))
    if run is None:
        return code
    mod, argv = run
    if "-h" in argv or "--help" in argv:
        mod.parse(["--help"])
        return 0
    ns = mod.parse(list(argv))                  # validates every option (strict) before anything runs
    _, petsc = split_petsc(list(argv))
    _write_config(ns, petsc)
    mod.main(list(argv))
    return 0


def _write_config(ns, petsc) -> None:
    out = getattr(ns, "out", None)
    if not out:
        return
    from mpi4py import MPI

    from fpjko.common.collective import on_root

    def write():
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "config.toml"), "w") as fh:
            fh.write(namespace_to_toml(ns, petsc))

    on_root(MPI.COMM_WORLD, write)


def bench(argv: list[str]) -> int:
    code, run = _program("bench", argv, BENCHES, _package("bench"))
    if run is None:
        return code
    mod, argv = run
    mod.main(list(argv))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one `error:` line (exit code 2)."""

    def error(self, message):
        raise SystemExit(f"error: {self.prog}: {message}")


def one_error_line(run) -> int:
    """Run a command; any failure is one `error: ...` line on stderr (rank 0 under MPI) and exit code 1 (130 for an
    interrupt). FPJKO_DEBUG=1 shows the traceback too."""
    try:
        return run()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as e:                       # noqa: BLE001  (every failure gets its line)
        from fpjko.model.expressions import ExpressionError

        expected = (ValueError, TypeError, OSError, MemoryError, ArithmeticError, RuntimeError, ExpressionError)
        text = str(e).splitlines()[0] if str(e) else type(e).__name__
        line = f"error: {text}" if isinstance(e, expected) else f"error: {type(e).__name__}: {text} (a failure inside fpjko; FPJKO_DEBUG=1 shows where)"
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
        if comm.rank == 0:
            print(line, file=sys.stderr, flush=True)
        if comm.size > 1:                        # the others wait (a while) for rank 0's line before they exit
            import time

            req, t0 = comm.Ibarrier(), time.monotonic()
            while not req.Test() and time.monotonic() - t0 < 10.0:
                time.sleep(0.01)
        if os.environ.get("FPJKO_DEBUG"):
            raise
        return 1


def validate(argv: list[str]) -> int:
    """`fpjko validate MODEL.toml [options]`: the model's study (fpjko.model.validate); options override the file's
    [study] table. Every failure is one `error:` line."""
    argv, opts = _common(argv)
    if opts["quiet"]:
        os.environ["FPJKO_PROGRESS"] = "0"
    if opts["np"] and opts["np"] > 1:
        cmd = ["mpirun", "-n", str(opts["np"]), sys.executable, "-m", "fpjko.cli", "validate", *argv]
        return run_mpirun(cmd)
    p = _Parser(prog="fpjko validate", description="A model's particles against its PDE, with fitted rates.")
    p.add_argument("model", help="the model's TOML file (see fpjko.model.files)")
    p.add_argument("--ns", type=int, nargs="+", help="particle counts, increasing")
    p.add_argument("--t", type=float, help="the time of the comparison")
    p.add_argument("--repeats", type=int, help="seeds per n")
    p.add_argument("--seed", type=int)
    p.add_argument("--dt", type=float, help="the particles' time step")
    p.add_argument("--h", type=float, help="the FE cell size (the floor uses h/2 too)")
    p.add_argument("--degree", type=int, help="the FE degree")
    p.add_argument("--fe-dt", type=float, help="the PDE's time step")
    p.add_argument("--force", choices=("auto", "direct", "mesh", "rbm"),
                   help="the particles' interaction force (default auto: the particle mesh for large n)")
    p.add_argument("--cells", type=int, help="the particle mesh's cells per direction")
    p.add_argument("--batch", type=int, help="the Random Batch size")
    p.add_argument("--out", default=None, help="a folder for validate.json and validate.png")
    p.add_argument("--no-plot", action="store_true")
    a = p.parse_args(argv)

    def run() -> int:
        from mpi4py import MPI

        from fpjko.model import files, validate as run_study

        comm = MPI.COMM_WORLD
        model, study = files.read(a.model, comm)
        for k in ("ns", "t", "repeats", "seed", "dt", "h", "degree", "fe_dt"):
            if getattr(a, k) is not None:
                study[k] = getattr(a, k)
        popts = dict(study.pop("particle_options", {}))
        popts.update({k: getattr(a, k) for k in ("force", "cells", "batch") if getattr(a, k) is not None})
        if popts:
            study["particle_options"] = popts
        if "ns" not in study or "t" not in study:
            raise ValueError("give the particle counts and the time (--ns, --t or the file's [study] table)")
        if comm.rank == 0:
            print(model.describe(), flush=True)
        run_study(model, out=a.out, plot=not a.no_plot, **study)
        return 0
    return one_error_line(run)


def chaos(argv: list[str]) -> int:
    """`fpjko chaos RUNS.npz [options]`: the propagation-of-chaos study of pairs of runs from any trainer
    (fpjko.model.chaos; the file format is in its doc). Every failure is one `error:` line."""
    argv, opts = _common(argv)
    if opts["np"] and opts["np"] > 1:
        return run_mpirun(["mpirun", "-n", str(opts["np"]), sys.executable, "-m", "fpjko.cli", "chaos", *argv])
    p = _Parser(prog="fpjko chaos", description="Two runs of a particle system against each other, with rates.")
    p.add_argument("snapshots", help="an .npz with N<width>_s<seed>_a / _b arrays (width, q) and optional names")
    p.add_argument("--marginals", nargs="+", default=[], help="columns (names or indices) whose W1 is measured")
    p.add_argument("--theory", type=float, help="the exponent the theory predicts (e.g. -0.5)")
    p.add_argument("--projections", type=int, default=128, help="directions of the sliced W2")
    p.add_argument("--label", default=None)
    p.add_argument("--out", default=None, help="a folder for chaos.json and chaos.png")
    p.add_argument("--no-plot", action="store_true")
    a = p.parse_args(argv)

    def run() -> int:
        from fpjko.model.chaos import chaos_study

        marg = [int(m) if m.isdigit() else m for m in a.marginals]
        chaos_study(a.snapshots, marginals=marg, theory=a.theory, n_projections=a.projections,
                    label=a.label or os.path.basename(a.snapshots), out=a.out, plot=not a.no_plot)
        return 0
    return one_error_line(run)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "info":
        if rest:
            raise SystemExit(f"error: fpjko info takes no options, got {' '.join(rest)}")
        info()
        return 0
    if cmd == "demo":
        return demo(rest)
    if cmd == "bench":
        return bench(rest)
    if cmd == "validate":
        return validate(rest)
    if cmd == "chaos":
        return chaos(rest)
    print(f"error: unknown command {cmd!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
