"""Plain formulas as sympy expressions, without evaluating any Python, within bounds.

A model's fields are given as text ('(x**2 - 1)**2 + 0.5*y**2'), numbers, sympy expressions, or nested lists of
those (vectors, matrices). Text is parsed by Python's `ast` (parsing runs nothing) and the tree is walked: only
numbers, the model's symbols, the constants pi and E, the operators + - * / ** and unary -, and calls of the
functions in FUNCTIONS with exactly one positional argument are accepted; any other node (an attribute, a
subscript, a lambda, a keyword, a string, an unknown name) is refused naming the token. The expression is then
built from the tree with sympy's constructors; sympy.sympify (which evaluates) is never called on user text.

Bounds, so that no formula can hang the parser or exhaust memory (each refused with an ExpressionError that
quotes at most EXCERPT characters of the formula):

- the text has at most MAX_CHARS characters, the tree at most MAX_NODES expression nodes (numbers, names,
  operations, calls) and a nesting depth of at most MAX_DEPTH, measured by an iterative walk; a chain
  a + b - c + ... (or a * b / c * ...) counts as one level and is built at once with sp.Add (sp.Mul), so long
  sums do not recurse per term;
- a number is at most 10**MAX_LOG10 in magnitude, and a power of numbers b**e is estimated as 10**(e log10|b|)
  BEFORE sympy computes it exactly and refused beyond 10**MAX_LOG10 or below 10**-MAX_LOG10 (9**9**9**9 is
  refused, not computed);
- a base that is not a number is raised to a rational power of at most MAX_POWER in absolute value (expanding
  (1 + z**2)**3000 is what takes the time), also where sympy merges powers (x**60 * x**60);
- nothing infinite or undefined: 1e999, 1/0, log(0), 0/0 are refused naming the sub-formula, and so are inf and
  nan given as numbers (Python floats, numpy scalars) or inside sympy expressions, entry by entry for vectors
  and matrices.

`expanded_size` bounds the terms sp.expand would produce, for callers that expand (Model's W).
"""

from __future__ import annotations

import ast
import math
import numbers

import mpmath
import sympy as sp

FUNCTIONS = {"exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan,
             "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "atan": sp.atan, "abs": sp.Abs, "Abs": sp.Abs,
             "erf": sp.erf}
CONSTANTS = {"pi": sp.pi, "E": sp.E}

MAX_CHARS = 4000      # a long realistic formula (a 200-term polynomial) has ~3000
MAX_NODES = 3000      # expression nodes; a sum of 1500 symbols has 2999
MAX_DEPTH = 50        # realistic nesting is ~10; 50 keeps sympy's and lambdify's recursion (and Python's limit of
                      # 200 nested parentheses in generated code) far away
MAX_LOG10 = 300       # numbers at most 1e300 in magnitude: finite as float64 (1.8e308)
MAX_POWER = 64        # x**10, (x**2 + y**2)**3 and r**-12 pass; (1 + z**2)**3000 is refused
EXCERPT = 60          # characters of a formula quoted in an error message

_FAMILY = {ast.Add: "sum", ast.Sub: "sum", ast.Mult: "product", ast.Div: "product"}


class ExpressionError(ValueError):
    """A formula that is not plain arithmetic of the allowed symbols and functions, or not within bounds."""


def excerpt(text: str, n: int = EXCERPT) -> str:
    """The first n characters of text, with '...' where it is longer (for error messages)."""
    return text if len(text) <= n else text[:n] + "..."


def _log10(n: sp.Number) -> float:
    """log10 |n| of a nonzero finite sympy number, without converting it to a float (which could overflow)."""
    if n.is_Rational:
        return math.log10(abs(n.p)) - math.log10(n.q)
    return float(mpmath.log10(abs(n)))


def _nonfinite(e: sp.Basic) -> str | None:
    """Why e is not finite ('is undefined (nan)', 'is infinite'), or None."""
    if e.has(sp.nan):
        return "is undefined (nan)"
    if e.has(sp.oo, -sp.oo, sp.zoo):
        return "is infinite"
    if e.has(sp.I):
        return "is complex (it has an imaginary part; the fields are real)"
    return None


def _too_big(e: sp.Basic) -> str | None:
    """Why e holds a number out of bounds, or None."""
    for n in e.atoms(sp.Number):
        if n != 0 and _log10(n) > MAX_LOG10:
            return f"holds the number {excerpt(str(n), 20)!r}, beyond 1e{MAX_LOG10}"
    return None


def _big_power(e: sp.Basic, deep: bool = False):
    """A power of a non-number base to a numeric exponent (rational or float) beyond MAX_POWER at e's top (e or one
    of its factors; deep: anywhere in e, for a sympy expression given as it is)."""
    nodes = sp.preorder_traversal(e) if deep else (e.args if e.is_Mul else (e,))
    for f in nodes:
        if f.is_Pow and f.exp.is_Number and abs(f.exp) > MAX_POWER and not f.base.is_Number:
            return f
    return None


def _measure(tree: ast.AST, text: str, what: str) -> None:
    """Refuse a tree of more than MAX_NODES expression nodes or nested deeper than MAX_DEPTH (an iterative walk;
    the left operand of a + - (* /) that is itself a + - (* /) is the same level: the chain is built flat)."""
    stack, nodes = [(tree, 1)], 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise ExpressionError(f"{what}: the formula {excerpt(text)!r} is too large: more than {MAX_NODES} numbers, "
                                  "names and operations")
        if depth > MAX_DEPTH:
            raise ExpressionError(f"{what}: the formula {excerpt(text)!r} is too deeply nested: more than {MAX_DEPTH} "
                                  "levels of parentheses, powers, functions or unary minus")
        fam = _FAMILY.get(type(node.op)) if isinstance(node, ast.BinOp) else None
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                flat = (fam is not None and child is node.left and isinstance(child, ast.BinOp)
                        and _FAMILY.get(type(child.op)) == fam)
                stack.append((child, depth if flat else depth + 1))


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
        Naming the first token that is not allowed (and the allowed names), a function called with other than
        one argument, a sub-formula that is infinite, undefined or too large, or a formula beyond the bounds.
    """
    if not isinstance(text, str):
        raise TypeError(f"{what}: a formula must be a string, got {type(text).__name__}")
    text = text.strip()
    short = excerpt(text)
    if len(text) > MAX_CHARS:
        raise ExpressionError(f"{what}: the formula {short!r} is too long: {len(text)} characters (at most "
                              f"{MAX_CHARS})")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError) as e:
        raise ExpressionError(f"{what}: {short!r} is not a formula ({getattr(e, 'msg', e)} at column "
                              f"{getattr(e, 'offset', '?')})") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"{what}: the formula {short!r} is too deeply nested") from None
    _measure(tree.body, text, what)
    allowed = sorted(symbols) + sorted(CONSTANTS)

    def token(node):
        return excerpt(ast.get_source_segment(text, node) or type(node).__name__)

    def refuse(node, why):
        raise ExpressionError(f"{what}: {why} {token(node)!r} is not allowed in {short!r} (only numbers, the "
                              f"symbols {allowed}, + - * / ** and the functions {sorted(FUNCTIONS)})")

    def finite(node, e):
        why = _nonfinite(e)
        if why:
            raise ExpressionError(f"{what}: {token(node)!r} {why} (in {short!r})")
        big = _big_power(e)
        if big is not None:
            raise ExpressionError(f"{what}: {token(node)!r} raises to the power {big.exp}: at most {MAX_POWER} for a "
                                  f"base that is not a number (in {short!r})")
        return e

    def number(node):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            refuse(node, "the literal")
        if isinstance(v, float) and not math.isfinite(v):
            raise ExpressionError(f"{what}: the number {token(node)!r} overflows to infinity (in {short!r})")
        n = sp.Integer(v) if isinstance(v, int) else sp.Float(v)
        if n != 0 and _log10(n) > MAX_LOG10:
            raise ExpressionError(f"{what}: the number {token(node)!r} is too large (beyond 1e{MAX_LOG10}; in "
                                  f"{short!r})")
        return n

    def power(node):
        b, e = build(node.left), build(node.right)
        if b.is_Number and e.is_Number:
            if b != 0 and abs(b) != 1:               # |b**e| = 10**(e log10|b|): refuse before computing it
                mag = float(e) * _log10(b)
                if abs(mag) > MAX_LOG10:
                    raise ExpressionError(f"{what}: {token(node)!r} is too {'large' if mag > 0 else 'small'}: about "
                                          f"1e{mag:.0f}, beyond 1e{'' if mag > 0 else '-'}{MAX_LOG10} (in {short!r})")
        elif e.is_Number and abs(e) > MAX_POWER:
            raise ExpressionError(f"{what}: {token(node)!r} raises to the power {e}: at most {MAX_POWER} for a base "
                                  f"that is not a number (in {short!r})")
        return finite(node, b ** e)

    def chain(node, fam):
        """A + - (or * /) chain left-deep from node, built with one sp.Add (sp.Mul): no recursion per term."""
        right, cur = [], node
        while isinstance(cur, ast.BinOp) and _FAMILY.get(type(cur.op)) == fam:
            right.append(cur)
            cur = cur.left
        items, div = [build(cur)], False
        for n in reversed(right):
            r = build(n.right)
            if isinstance(n.op, ast.Sub):
                r = -r
            elif isinstance(n.op, ast.Div):
                r, div = sp.Pow(r, -1), True
            items.append(r)
        e = sp.Add(*items) if fam == "sum" else sp.Mul(*items)
        return finite(node, e) if div or fam == "product" else e

    def call(node):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            refuse(node.func, "the function")
        if node.keywords:
            refuse(node, "a keyword argument in")
        if any(isinstance(a, ast.Starred) for a in node.args):
            refuse(node, "a starred argument in")
        if len(node.args) != 1:
            raise ExpressionError(f"{what}: the function {node.func.id} takes exactly 1 argument, got "
                                  f"{len(node.args)} in {token(node)!r}")
        return finite(node, FUNCTIONS[node.func.id](build(node.args[0])))

    def build(node):
        if isinstance(node, ast.Constant):
            return number(node)
        if isinstance(node, ast.Name):
            if node.id in symbols:
                return symbols[node.id]
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            refuse(node, "the undefined name")
        if isinstance(node, ast.BinOp):
            fam = _FAMILY.get(type(node.op))
            if fam is not None:
                return chain(node, fam)
            if isinstance(node.op, ast.Pow):
                return power(node)
            refuse(node, "the operator in")
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return -build(node.operand)
            if isinstance(node.op, ast.UAdd):
                return build(node.operand)
            refuse(node, "the operator in")
        if isinstance(node, ast.Call):
            return call(node)
        refuse(node, f"the {type(node).__name__.lower()}")

    try:
        expr = build(tree.body)
    except RecursionError:
        raise ExpressionError(f"{what}: the formula {short!r} is too deeply nested") from None
    except MemoryError:
        raise ExpressionError(f"{what}: the formula {short!r} is too large") from None
    why = _nonfinite(expr) or _too_big(expr)
    if why:
        raise ExpressionError(f"{what}: the formula {short!r} {why}")
    return expr


def expanded_size(expr: sp.Basic, cap: int = 10 ** 6) -> int:
    """An upper bound (capped at cap) on the number of terms sp.expand produces for expr or any sub-expression.

    Symbols, numbers: 1; a sum: the sum of its terms' sizes; a product: the product; a power of a sum of k terms to
    an integer (or rational) m: the C(|m| + k - 1, k - 1) terms of the multinomial; anything else (a function, a
    power to a symbolic exponent): 1 (its arguments are bounded in their own right). An iterative walk.
    """
    size, worst, stack = {}, 1, [(expr, False)]
    while stack:
        e, ready = stack.pop()
        if e in size:
            continue
        if not ready and e.args:
            stack.append((e, True))
            stack.extend((a, False) for a in e.args if a not in size)
            continue
        if e.is_Add:
            n = sum(size[a] for a in e.args)
        elif e.is_Mul:
            n = 1
            for a in e.args:
                n = min(n * size[a], cap + 1)
        elif e.is_Pow and e.exp.is_Rational:
            k, m = size[e.base], int(abs(e.exp))
            r, n = min(m, k - 1), 1
            for j in range(1, r + 1):                    # C(m + k - 1, r), stopping once beyond cap
                n = n * (m + k - 1 - r + j) // j
                if n > cap:
                    break
        else:
            n = 1
        size[e] = min(n, cap + 1)
        worst = max(worst, size[e])
    return min(worst, cap + 1)


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

    Raises
    ------
    ExpressionError
        As parse, and for a number or sympy expression that is not finite (naming the entry of a vector, matrix).
    """
    def shown(v):
        return excerpt(repr(v), 2 * EXCERPT)

    def scalar(v, where):
        if isinstance(v, str):
            return parse(v, symbols, where)
        if isinstance(v, sp.Basic):
            # the model's own symbols by name (a Symbol('x') made without real=True is the model's x), and the
            # bounds of a parsed formula
            by_name = {s: symbols[s.name] for s in v.free_symbols if getattr(s, "name", None) in symbols}
            e = v.xreplace(by_name) if by_name else v
            if sp.count_ops(e) > MAX_NODES:
                raise ExpressionError(f"{where}: the expression {excerpt(str(e))!r} is too large: more than "
                                      f"{MAX_NODES} operations")
            big = _big_power(e, deep=True)
            if big is not None:
                raise ExpressionError(f"{where}: {excerpt(str(big))!r} raises to the power {big.exp}: at most "
                                      f"{MAX_POWER} for a base that is not a number")
        elif isinstance(v, bool):
            raise TypeError(f"{where}: expected a formula (string), a number or a sympy expression, got {v!r}")
        elif isinstance(v, numbers.Integral):
            e = sp.Integer(int(v))
        elif isinstance(v, numbers.Real) or hasattr(v, "item") and getattr(v, "shape", None) == ():
            f = float(v)
            if not math.isfinite(f):
                raise ExpressionError(f"{where}: the number {f!r} is {'undefined (nan)' if f != f else 'infinite'}")
            e = sp.Float(f)
        else:
            raise TypeError(f"{where}: expected a formula (string), a number or a sympy expression, got {shown(v)}")
        why = _nonfinite(e) or _too_big(e)
        if why:
            raise ExpressionError(f"{where}: {excerpt(str(e))!r} {why}")
        extra = sorted(str(s) for s in e.free_symbols if s not in set(symbols.values()))
        if extra:
            raise ExpressionError(f"{where}: the undefined symbols {extra} (allowed: {sorted(symbols)})")
        return e

    if shape == ():
        if isinstance(value, (list, tuple)) or getattr(value, "ndim", 0) > 0:
            raise ExpressionError(f"{what} must be a scalar formula, got {shown(value)}")
        return scalar(value, what)
    if isinstance(value, str) or not hasattr(value, "__len__"):
        raise ExpressionError(f"{what} must be a {'vector' if len(shape) == 1 else 'matrix'} of formulas, got "
                              f"{shown(value)}")
    rows = value.tolist() if hasattr(value, "tolist") else list(value)
    if len(shape) == 1:
        if len(rows) != shape[0] or any(isinstance(r, (list, tuple)) for r in rows):
            raise ExpressionError(f"{what} must be a vector of {shape[0]} formulas, got {shown(value)}")
        return sp.Matrix([scalar(r, f"{what}[{i}]") for i, r in enumerate(rows)])
    if len(rows) != shape[0] or any(not isinstance(r, (list, tuple)) or len(r) != shape[1] for r in rows):
        raise ExpressionError(f"{what} must be a {shape[0]} x {shape[1]} matrix of formulas, got {shown(value)}")
    return sp.Matrix([[scalar(c, f"{what}[{i}][{j}]") for j, c in enumerate(r)] for i, r in enumerate(rows)])
