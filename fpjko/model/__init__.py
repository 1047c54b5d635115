"""A mean-field model declared once, and the comparison of its particles with its PDE.

    declaration.py  Model: V, W, D, b, beta, the initial law and the domain as written, checked and compared
                    across ranks
    expressions.py  plain formulas -> sympy without evaluating Python (parse, field), within bounds
    structure.py    what the formulas are: the kind of W, D symmetric positive definite, D = c I
    forms.py        the numpy forms (particles) and UFL forms (finite elements), built once
    laws.py         the initial law: a Gaussian, or a density sampled exactly (adaptive cells, checked envelope)
    solvers.py      model.particles / fokker_planck / jko / stationary, each from the one initial law
    study.py        validate(model, ns, t, ...): distances against n, the FE floor, fitted slopes, table/JSON/plot
    network.py      NetworkModel: the two-layer network's neurons and limit PDE, a model of its own kind
    graphon.py      GraphonModel: noisy SGD on symmetric matrices and its graphon McKean-Vlasov limit
    chaos.py        chaos_study: two runs against each other (no PDE needed), snapshots from any trainer
    files.py        a model and its study from a TOML file (`fpjko validate MODEL.toml`)
"""

from fpjko.model.chaos import chaos_study, train_snapshots
from fpjko.model.declaration import Model
from fpjko.model.expressions import ExpressionError, parse
from fpjko.model.graphon import GraphonModel
from fpjko.model.network import NetworkModel
from fpjko.model.study import validate

__all__ = ["Model", "NetworkModel", "GraphonModel", "validate", "chaos_study", "train_snapshots", "parse",
           "ExpressionError"]
