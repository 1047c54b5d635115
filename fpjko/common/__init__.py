"""Infrastructure both halves of the package use (numpy and mpi4py only, no dolfinx):

    checks      argument checks that name the offending value
    collective  MPI verdicts: every rank raises the same error (agree, collectively, on_root)
    progress    the rank-0 progress bar and a study's progress lines
    sizes       memory estimates, refused before anything is allocated
    files       atomic, collective .npz / text writes and checked reads
"""
