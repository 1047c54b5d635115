"""A model and its study from a TOML file: what `fpjko validate MODEL.toml` reads.

    name = "ou_1d"
    d = 1
    beta = 1.0
    V = "0.5*x**2"                    # formulas as strings (fpjko.model.expressions: nothing is evaluated)
    W = 1.0                           # optional: a number k (k|z|^2/2) or a formula in z0, z1, ... (z in 1D)
    D = [["1 + 0.25*sin(x)"]]         # optional: a number, or a d x d matrix of formulas
    b = ["-y", "x"]                   # optional: d formulas
    domain = [[-7.0], [7.0]]          # lower, upper
    [initial]                         # a Gaussian (mean, cov), or density = "formula"
    mean = [1.5]
    cov = 0.09
    [study]                           # validate()'s keywords: ns, t, repeats, seed, dt, h, degree, fe_dt,
    ns = [100, 400, 1600]             # n_projections, and the particles' force ("auto", "direct", "mesh",
    t = 1.0                           # "rbm"), cells and batch
    force = "auto"

Unknown keys are errors naming them (also in [initial]: a Gaussian takes mean and cov, a density `density`).
"""

from __future__ import annotations

import tomllib

from fpjko.model.declaration import Model

MODEL_KEYS = ("name", "d", "V", "W", "D", "b", "beta", "domain", "initial", "study")
STUDY_KEYS = ("ns", "t", "repeats", "seed", "dt", "h", "degree", "fe_dt", "n_projections")
PARTICLE_KEYS = ("force", "cells", "batch")          # model.particles' keywords, passed as particle_options


def load(path: str) -> tuple[dict, dict]:
    """The model's keywords and the study keywords of a TOML file, checked (no collective: rank 0 reads).

    Parameters
    ----------
    path : str

    Returns
    -------
    model : dict
        Model() keywords.
    study : dict
        validate() keywords from the [study] table (force, cells and batch as particle_options).
    """
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not a TOML file ({e})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a TOML file (not UTF-8 text)") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, not a model's TOML file") from None
    except OSError as e:
        raise OSError(e.errno, f"cannot read the model file {path!r}: {e.strerror or e}") from None
    unknown = sorted(set(data) - set(MODEL_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown} (a model has {list(MODEL_KEYS)})")
    study = data.pop("study", {})
    if not isinstance(study, dict):
        raise ValueError(f"{path}: 'study' must be a table [study], got {study!r}")
    study = dict(study)
    bad = sorted(set(study) - set(STUDY_KEYS) - set(PARTICLE_KEYS))
    if bad:
        raise ValueError(f"{path}: unknown [study] keys {bad} (validate takes {list(STUDY_KEYS + PARTICLE_KEYS)})")
    popts = {k: study.pop(k) for k in PARTICLE_KEYS if k in study}
    if popts:
        study["particle_options"] = popts
    if "d" not in data:
        raise ValueError(f"{path}: the model's dimension d is missing")
    return data, study


def read(path: str, comm=None) -> tuple[Model, dict]:
    """The model and the study keywords of a TOML file (collective: rank 0 reads, every rank declares the model).

    Parameters
    ----------
    path : str
    comm : mpi4py.MPI.Comm, optional
        The ranks that declare the model (default COMM_WORLD).

    Returns
    -------
    model : Model
    study : dict
        validate() keywords from the [study] table.
    """
    from fpjko.common.collective import on_root
    from fpjko.samplers.streams import default_comm

    comm = default_comm(comm)
    data, study = on_root(comm, load, path)
    try:
        model = Model(**data, comm=comm)
    except (ValueError, TypeError) as e:
        raise type(e)(f"{path}: {e}") from None
    return model, study
