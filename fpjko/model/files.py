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
    [study]                           # validate()'s keywords: ns, t, repeats, seed, dt, h, degree, fe_dt
    ns = [100, 400, 1600]
    t = 1.0

Unknown keys are errors naming them.
"""

from __future__ import annotations

import tomllib

from fpjko.model.model import Model

MODEL_KEYS = ("name", "d", "V", "W", "D", "b", "beta", "domain", "initial", "study")
STUDY_KEYS = ("ns", "t", "repeats", "seed", "dt", "h", "degree", "fe_dt", "n_projections")


def read(path: str) -> tuple[Model, dict]:
    """The model and the study keywords of a TOML file.

    Parameters
    ----------
    path : str

    Returns
    -------
    model : Model
    study : dict
        validate() keywords from the [study] table.
    """
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not a TOML file ({e})") from None
    unknown = sorted(set(data) - set(MODEL_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown} (a model has {list(MODEL_KEYS)})")
    study = dict(data.pop("study", {}))
    bad = sorted(set(study) - set(STUDY_KEYS))
    if bad:
        raise ValueError(f"{path}: unknown [study] keys {bad} (validate takes {list(STUDY_KEYS)})")
    if "d" not in data:
        raise ValueError(f"{path}: the model's dimension d is missing")
    model = Model(**data)
    return model, study
