"""The `fpjko` command: `fpjko info` (versions, PETSc packages), `fpjko demo [args]` (main demo)."""

from __future__ import annotations

import argparse
import re
import sys

_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
GLOBAL_PETSC = ("log_view", "info", "options_left", "options_view", "help", "malloc_debug", "malloc_view",
                "on_error_abort", "log_trace", "start_in_debugger", "no_signal_handler", "memory_view")


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


def parse_args(parser: argparse.ArgumentParser, argv=None, petsc_prefixes: tuple = ()) -> argparse.Namespace:
    """Parse a demo's command line strictly: an unknown or misspelled flag (say --t_end for --t-end)
    is an error naming it. With petsc_prefixes, one-dash options go to the PETSc options database
    with their values (`-dw_ksp_type gmres` or `-dw_ksp_type=gmres`); an option under no listed
    prefix (and not a global PETSc option such as -log_view) is an error, not silently unused."""
    argv = list(sys.argv[1:] if argv is None else argv)
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
    from petsc4py import PETSc

    import numpy

    print(f"dolfinx {dolfinx.__version__} (adios2: {dolfinx.common.has_adios2})")
    print("PETSc {}.{}.{}".format(*PETSc.Sys.getVersion()), "scalar", PETSc.ScalarType.__name__)
    print("PETSc packages:", ", ".join(p for p in ("mumps", "superlu_dist", "hypre") if PETSc.Sys.hasExternalPackage(p)))
    print(f"numpy {numpy.__version__}, python {sys.version.split()[0]}")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv[0] == "info":
        info()
        return 0
    if argv[0] == "demo":
        from demos import double_well

        double_well.main(argv[1:])
        return 0
    print(f"unknown command {argv[0]!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
