"""Plain formulas as sympy expressions, without evaluating any Python.

A model's fields are given as text ('(x**2 - 1)**2 + 0.5*y**2'), numbers, sympy expressions, or nested lists of
those (vectors, matrices). Text is parsed by Python's `ast` (parsing runs nothing) and the tree is walked: only
numbers, the model's symbols, the constants pi and E, the operators + - * / ** and unary -, and calls of the
functions in FUNCTIONS with positional arguments are accepted; any other node (an attribute, a subscript, a
lambda, a keyword, a string, an unknown name) is refused naming the token. The expression is then built from the
tree with sympy's constructors; sympy.sympify (which evaluates) is never called on user text.
"""

from __future__ import annotations

import ast
import numbers

import sympy as sp

FUNCTIONS = {"exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan,
             "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "atan": sp.atan, "abs": sp.Abs, "Abs": sp.Abs,
             "erf": sp.erf}
CONSTANTS = {"pi": sp.pi, "E": sp.E}
_BINARY = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a ** b}


class ExpressionError(ValueError):
    """A formula that is not plain arithmetic of the allowed symbols and functions."""


def _token(node: ast.AST, text: str) -> str:
    seg = ast.get_source_segment(text, node)
    return seg if seg else type(node).__name__


def parse(text: str, symbols: dict, what: str = "expression") -> sp.Expr:
    """A sympy expression from a plain formula.

    Parameters
    ----------
    text : str
        The formula, e.g. '(x**2 - 1)**2 + 0.5*y**2'.
    symbols : dict of str to sympy.Symbol
        The names the formula may use.
    what : str
        What the formula is (for the error message), e.g. 'potential V'.

    Returns
    -------
    sympy.Expr

    Raises
    ------
    ExpressionError
        Naming the first token that is not allowed (and the allowed names).
    """
    if not isinstance(text, str):
        raise TypeError(f"{what}: a formula must be a string, got {type(text).__name__}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ExpressionError(f"{what}: {text!r} is not a formula ({e.msg} at column {e.offset})") from None
    allowed = sorted(symbols) + sorted(CONSTANTS)

    def refuse(node, why):
        raise ExpressionError(f"{what}: {why} {_token(node, text)!r} is not allowed in {text!r} (only numbers, the "
                              f"symbols {allowed}, + - * / ** and the functions {sorted(FUNCTIONS)})")

    def build(node):
        if isinstance(node, ast.Expression):
            return build(node.body)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, numbers.Real):
                refuse(node, "the literal")
            return sp.Integer(node.value) if isinstance(node.value, int) else sp.Float(node.value)
        if isinstance(node, ast.Name):
            if node.id in symbols:
                return symbols[node.id]
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            refuse(node, "the undefined name")
        if isinstance(node, ast.BinOp):
            op = _BINARY.get(type(node.op))
            if op is None:
                refuse(node, "the operator in")
            return op(build(node.left), build(node.right))
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return -build(node.operand)
            if isinstance(node.op, ast.UAdd):
                return build(node.operand)
            refuse(node, "the operator in")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                refuse(node.func, "the function")
            if node.keywords:
                refuse(node, "a keyword argument in")
            if any(isinstance(a, ast.Starred) for a in node.args):
                refuse(node, "a starred argument in")
            return FUNCTIONS[node.func.id](*[build(a) for a in node.args])
        refuse(node, f"the {type(node).__name__.lower()}")

    expr = build(tree)
    return sp.sympify(expr) if not isinstance(expr, sp.Basic) else expr


def field(value, symbols: dict, what: str, shape: tuple = ()):
    """A model field as sympy: text, a number, a sympy expression, or nested lists of those of `shape`.

    Parameters
    ----------
    value : str, number, sympy.Expr or nested list
    symbols : dict of str to sympy.Symbol
    what : str
        The field's name (for the error message).
    shape : tuple of int
        () for a scalar, (d,) for a vector, (d, d) for a matrix.

    Returns
    -------
    sympy.Expr or sympy.Matrix
    """
    def scalar(v, where):
        if isinstance(v, str):
            e = parse(v, symbols, where)
        elif isinstance(v, sp.Basic):
            e = v
        elif isinstance(v, numbers.Real) and not isinstance(v, bool):
            e = sp.Float(v) if isinstance(v, float) else sp.Integer(v)
        elif hasattr(v, "item") and getattr(v, "shape", None) == ():
            e = sp.Float(float(v))
        else:
            raise TypeError(f"{where}: expected a formula (string), a number or a sympy expression, got {v!r}")
        extra = sorted(str(s) for s in e.free_symbols if s not in set(symbols.values()))
        if extra:
            raise ExpressionError(f"{where}: the undefined symbols {extra} (allowed: {sorted(symbols)})")
        return e

    if shape == ():
        if isinstance(value, (list, tuple)) or getattr(value, "ndim", 0) > 0:
            raise ExpressionError(f"{what} must be a scalar formula, got {value!r}")
        return scalar(value, what)
    if isinstance(value, str) or not hasattr(value, "__len__"):
        raise ExpressionError(f"{what} must be a {'vector' if len(shape) == 1 else 'matrix'} of formulas, got {value!r}")
    rows = value.tolist() if hasattr(value, "tolist") else list(value)
    if len(shape) == 1:
        if len(rows) != shape[0] or any(isinstance(r, (list, tuple)) for r in rows):
            raise ExpressionError(f"{what} must be a vector of {shape[0]} formulas, got {value!r}")
        return sp.Matrix([scalar(r, f"{what}[{i}]") for i, r in enumerate(rows)])
    if len(rows) != shape[0] or any(not isinstance(r, (list, tuple)) or len(r) != shape[1] for r in rows):
        raise ExpressionError(f"{what} must be a {shape[0]} x {shape[1]} matrix of formulas, got {value!r}")
    return sp.Matrix([[scalar(c, f"{what}[{i}][{j}]") for j, c in enumerate(r)] for i, r in enumerate(rows)])
