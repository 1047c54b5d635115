"""fpjko.model under `mpirun -n N` (test_model.py): prints 'RESULT {json}'.

    mpi_model.py particles N      the model's particles at t_end, gathered in global order
    mpi_model.py validate         a small 1D OU study's distances
"""

import json
import sys

from mpi4py import MPI

from fpjko.model import Model, validate

comm = MPI.COMM_WORLD
OU = Model(1, V="0.5*x**2 + 0.1*x**4", W="-exp(-z**2)", beta=2.0, initial={"mean": [1.0], "cov": 0.1},
           domain=([-4.0], [4.0]), name="mpi")
if sys.argv[1] == "particles":
    st, x = OU.particles(int(sys.argv[2]), seed=7, comm=comm, dt=0.01, t_end=0.1)
    out = {"x": st.allgather(x).ravel().tolist()}
else:
    r = validate(OU, [50, 200], t=0.1, repeats=2, dt=0.01, h=0.1, degree=1, fe_dt=0.01, comm=comm, echo=False)
    out = {"metrics": {k: {"mean": v["mean"]} for k, v in r["metrics"].items()}}
if comm.rank == 0:
    print("RESULT " + json.dumps(out), flush=True)
