"""NewtonJKO: JKO steps on any P1 mesh by Newton's method on the fully discrete step on the mesh's edge graph.

    solver.py    NewtonJKO (the protocol: set-up, initial data, the step's outer fixed point on W * rho, records)
    graph.py     EdgeGraph: control volumes, transmissibilities, the edge layout and its scatter, the Lipschitz
                 envelope
    energies.py  Energy: E_h, W * rho, the pointwise inverse e'(rho) = q and the mass shift
    schur.py     SchurSystem: the Newton direction from S = B D^-1 B^T + tau L, the predictor's system, their KSPs
    dual.py      StepData, DualNewton: Newton on the dual (with an entropy), the predictor, the homotopy in tau
    interior.py  InteriorPoint: the primal-dual barrier iteration (porous medium without entropy)

The parts take the step's data and return their results; only NewtonJKO keeps state. The method, its accuracy
and its measured costs are described in solver.py's docstring.
"""

from fpjko.solvers.jko.newton.solver import EXTRA_KEYS, MOBILITY, NewtonJKO  # noqa: F401
