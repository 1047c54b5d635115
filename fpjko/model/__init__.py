"""A mean-field model declared once, and the comparison of its particles with its PDE.

    model.py        Model: V, W, D, b, beta, the initial law and the domain as formulas; its particles
                    (model.particles), its PDEs (model.fokker_planck, model.jko, model.stationary) and structure
    expressions.py  plain formulas -> sympy without evaluating Python (parse, field)
    study.py        validate(model, ns, t, ...): distances against n, the FE floor, fitted slopes, table/JSON/plot
    network.py      NetworkModel: the two-layer network's neurons and limit PDE, a model of its own kind
    graphon.py      GraphonModel: noisy SGD on symmetric matrices and its graphon McKean-Vlasov limit
    files.py        a model and its study from a TOML file (`fpjko validate MODEL.toml`)
"""

from fpjko.model.expressions import ExpressionError, parse
from fpjko.model.graphon import GraphonModel
from fpjko.model.model import Model
from fpjko.model.network import NetworkModel
from fpjko.model.study import validate

__all__ = ["Model", "NetworkModel", "GraphonModel", "validate", "parse", "ExpressionError"]
