"""mpirun -n N python3 mpi_protocol.py NAME OUT save|resume: 'save' runs 3 steps, checkpoints, then runs on to 6
steps; 'resume' loads that checkpoint (written on another rank count) and runs to 6 steps. Prints the field."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mpi4py import MPI  # noqa: E402

from protocol_cases import CASES, field  # noqa: E402
from fpjko.solvers.io.checkpoint import Checkpointer, resume  # noqa: E402

name, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
s, args, kw = CASES[name][0](MPI.COMM_WORLD)
h = s.step_size
path = os.path.join(out, f"{name}.npz")
if mode == "save":
    s.set_initial(*args, **kw)
    s.run(3 * h, checkpoint=Checkpointer(path, every=100))
else:
    resume(s, path)
s.run(6 * h)
x, v = field(s)
if MPI.COMM_WORLD.rank == 0:
    print("RESULT " + json.dumps({"x": x.tolist(), "values": v.tolist(), "steps": s.steps,
                                  "history_t": s.history["t"]}), flush=True)
s.close()
