"""mpirun helper for test_demo.py: runs the main demo and prints 'RESULT {summary}'."""

import json
import sys

from mpi4py import MPI

from fpjko.demos import double_well

summary = double_well.main(sys.argv[1:])
if MPI.COMM_WORLD.rank == 0:
    print("RESULT " + json.dumps(summary), flush=True)
