"""The protocol of the `mpirun -n 2` fault scripts (tests/mpi_faults.py, tests/mpi_front_door.py): each case runs on
every rank and every rank prints

    START <case> <rank>
    FAULT {"case": ..., "rank": r, "type": ..., "message": ...}

(type null when nothing was raised). A watchdog ends the process if a case hangs for `hang` seconds, so the test
sees which case never finished (tests/conftest.py: run_faults, check_fault)."""

import faulthandler
import json


class SkipCase(Exception):
    """A case that cannot run here (e.g. no tmpfs to mount)."""


def run_cases(comm, cases: dict, names=None, hang: int = 60) -> None:
    for name in names or list(cases):
        faulthandler.dump_traceback_later(hang, exit=True)
        print(f"START {name} {comm.rank}", flush=True)
        kind = message = None
        try:
            cases[name]()
        except SkipCase as e:
            kind, message = "skip", str(e)
        except Exception as e:
            kind = type(e).__name__
            message = " | ".join([str(e), *getattr(e, "__notes__", [])])
        faulthandler.cancel_dump_traceback_later()
        print("FAULT " + json.dumps({"case": name, "rank": comm.rank, "type": kind, "message": message}), flush=True)
        comm.Barrier()
