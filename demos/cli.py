"""The `fpjko` command: `fpjko info` (versions, PETSc packages), `fpjko demo [args]` (main demo)."""

from __future__ import annotations

import sys


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
