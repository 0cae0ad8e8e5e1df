"""A small, safe expression language for kernel constructions (parsed, never ``eval``-ed).

Grammar (whitespace ignored)::

    expr    := term (("+" | "-") term)*
    term    := unary (("*" unary)* | unary-juxtaposed "f(x) f(z)" form)
    unary   := "-" unary | atom
    atom    := NUMBER | NAME | NAME "(" expr ")"              -- p(k1), exp(k1)
             | NAME "(" "phi" "(" "x" ")" "," "phi" "(" "z" ")" ")"   -- k3(phi(x), phi(z))
             | "f" "(" "x" ")" "f" "(" "z" ")"                -- f(x) f(z)
             | KERNEL "(" key "=" NUMBER ("," key "=" NUMBER)* ")"  -- rbf(gamma=0.5)
             | "(" expr ")"

NAME is a symbol bound in the environment: a kernel (k1, k2, k3 or any), a number (a), a
polynomial's coefficients (p), a real function (f) or a feature map (phi). Every node
evaluates to a Gram matrix ``K`` (n, m) for points ``X`` (n, d) and ``Y`` (m, d).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kernelnet.kernels import KERNELS, make_kernel

# real functions f: R^d -> R (for f(x) f(z)), and feature maps phi: R^d -> R^e
FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sin_sum": lambda X: np.sin(X.sum(axis=1)),
    "norm": lambda X: np.linalg.norm(X, axis=1),
    "first": lambda X: X[:, 0],
    "exp_first": lambda X: np.exp(X[:, 0]),
}
FEATURE_MAPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "square": lambda X: X * X,
    "tanh": np.tanh,
    "identity": lambda X: X,
}

GramFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


class ExpressionError(ValueError):
    """An expression that does not parse or names something unknown."""


@dataclass(frozen=True)
class Node:
    """A parsed construction: its Gram function, and the magnitude its entries are built
    from (|a| |K1| + |b| |K2| for a K1 + b K2, ...), which sets the rounding scale: a sum
    that cancels to ~1e-17 is still judged against the size of what cancelled."""

    text: str  # canonical text, e.g. "k1 + k2"
    gram: GramFn = field(compare=False)
    bases: tuple[str, ...] = ()  # the base kernels it uses, described
    scale: GramFn | None = field(default=None, compare=False)  # None: |gram|

    def __call__(self, X: np.ndarray, Y: np.ndarray | None = None) -> np.ndarray:
        return self.gram(X, X if Y is None else Y)

    def magnitude(self, X: np.ndarray, Y: np.ndarray | None = None) -> np.ndarray:
        """Entrywise size of the terms the Gram matrix is computed from (>= |K|)."""
        Y = X if Y is None else Y
        return np.abs(self.gram(X, Y)) if self.scale is None else self.scale(X, Y)


_TOKEN = re.compile(
    r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|([A-Za-z_]\w*)|(.))"
)


def tokenize(text: str) -> list[str]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or not match.group(0).strip():
            break
        tokens.append(match.group(0).strip())
        position = match.end()
    return tokens


MAX_TOKENS = 200  # a construction is a formula, not a program
MAX_DEPTH = 20  # nested parentheses, functions and signs
KERNEL_PARAM_BOUND = 1e6  # |gamma| and |coef0|
MAX_DEGREE = 50


def kernel_from_call(text: str) -> tuple[str, dict[str, float]]:
    """``"rbf(gamma=0.5)"`` -> ``("rbf", {"gamma": 0.5})``, or a bare name."""
    match = re.fullmatch(r"\s*(\w+)\s*(?:\((.*)\))?\s*", text)
    if match is None or match.group(1) not in KERNELS:
        raise ExpressionError(f"{text!r}: not a kernel (valid: {', '.join(KERNELS)})")
    params: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in (match.group(2) or "").split(","))):
        key, eq, value = item.partition("=")
        try:
            params[key.strip()] = float(value)
        except ValueError:
            raise ExpressionError(f"{text!r}: expected key=number, got {item!r}") from None
        if not eq:
            raise ExpressionError(f"{text!r}: expected key=number, got {item!r}")
    for key, value in params.items():
        if not math.isfinite(value) or abs(value) > KERNEL_PARAM_BOUND:
            raise ExpressionError(
                f"{text!r}: {key} must be finite and within ±{KERNEL_PARAM_BOUND:g}"
            )
    degree = params.get("degree")
    if degree is not None and (not float(degree).is_integer() or not 0 <= degree <= MAX_DEGREE):
        raise ExpressionError(f"{text!r}: degree must be an integer from 0 to {MAX_DEGREE}")
    try:
        make_kernel(match.group(1), **params)
    except (TypeError, ValueError) as exc:
        raise ExpressionError(f"{text!r}: {exc}") from None
    unknown = set(params) - {"gamma", "degree", "coef0"}
    if unknown:
        raise ExpressionError(f"{text!r}: unknown parameter(s) {sorted(unknown)}")
    return match.group(1), params


class _Parser:
    def __init__(self, text: str, env: dict[str, Any]):
        self.text, self.env = text, env
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        if len(self.tokens) > MAX_TOKENS:
            raise self.fail(f"longer than {MAX_TOKENS} tokens")

    def nested(self, build: Callable[[], Node]) -> Node:
        """Parse one nested level (parentheses, a function, a sign), bounded in depth."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels")
        try:
            return build()
        finally:
            self.depth -= 1

    def fail(self, message: str) -> ExpressionError:
        shown = self.text if len(self.text) <= 60 else self.text[:50] + "…"
        return ExpressionError(f"{shown!r}: {message}")

    def peek(self, offset: int = 0) -> str | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise self.fail(f"expected {expected or 'more'} at token {self.i + 1}, got {token!r}")
        self.i += 1
        return token

    def parse(self) -> Node:
        node = self.expr()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()!r}")
        return node

    def expr(self) -> Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            right = self.term()
            left = node
            if op == "+":
                gram = lambda X, Y, l=left, r=right: l(X, Y) + r(X, Y)  # noqa: E731
            else:
                gram = lambda X, Y, l=left, r=right: l(X, Y) - r(X, Y)  # noqa: E731
            node = Node(
                f"{left.text} {op} {right.text}",
                gram,
                left.bases + right.bases,
                lambda X, Y, l=left, r=right: l.magnitude(X, Y) + r.magnitude(X, Y),
            )
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.peek() == "*":
            self.take()
            right = self.unary()
            left = node
            node = Node(
                f"{left.text} * {right.text}",
                lambda X, Y, l=left, r=right: l(X, Y) * r(X, Y),
                left.bases + right.bases,
                lambda X, Y, l=left, r=right: l.magnitude(X, Y) * r.magnitude(X, Y),
            )
        return node

    def unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            inner = self.nested(self.unary)
            return Node(
                f"-{inner.text}", lambda X, Y, n=inner: -n(X, Y), inner.bases, inner.magnitude
            )
        return self.atom()

    def number(self, value: float, text: str) -> Node:
        return Node(text, lambda X, Y, v=value: np.full((len(X), len(Y)), v))

    def atom(self) -> Node:
        token = self.take()
        if token == "(":
            inner = self.nested(self.expr)
            self.take(")")
            return Node(f"({inner.text})", inner.gram, inner.bases, inner.magnitude)
        if re.fullmatch(r"\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?", token):
            return self.number(float(token), token)
        if not re.fullmatch(r"[A-Za-z_]\w*", token):
            raise self.fail(f"unexpected {token!r}")
        if self.peek() == "(" and self.peek(1) == "x" and self.peek(2) == ")":
            return self.outer(token)
        if self.peek() == "(" and self.peek(1) == "phi":
            return self.composed(token)
        if token in ("exp",) or isinstance(self.env.get(token), list):
            return self.function_of_kernel(token)
        if token in KERNELS:
            return self.kernel_call(token)
        if token not in self.env:
            raise self.fail(f"unknown name {token!r}")
        value = self.env[token]
        if isinstance(value, (int, float)):
            return self.number(float(value), token)
        if isinstance(value, str):
            return self.base_kernel(token, value)
        raise self.fail(f"{token!r} cannot stand here")

    def base_kernel(self, symbol: str, spec: str) -> Node:
        name, params = kernel_from_call(spec)
        kernel = make_kernel(name, **params)
        return Node(symbol, lambda X, Y, k=kernel: k(X, Y), (f"{symbol} = {spec}",))

    def kernel_call(self, name: str) -> Node:
        start = self.i - 1
        if self.peek() == "(":
            depth = 0
            while True:
                token = self.take()
                depth += token == "("
                depth -= token == ")"
                if depth == 0:
                    break
        spec = "".join(self.tokens[start : self.i]).replace(",", ", ")
        name, params = kernel_from_call(spec)
        kernel = make_kernel(name, **params)
        return Node(spec, lambda X, Y, k=kernel: k(X, Y), (spec,))

    def function_of_kernel(self, name: str) -> Node:
        self.take("(")
        inner = self.nested(self.expr)
        self.take(")")
        if name == "exp":
            return Node(
                f"exp({inner.text})",
                lambda X, Y, n=inner: np.exp(n(X, Y)),
                inner.bases,
                lambda X, Y, n=inner: np.exp(n(X, Y)) * (1 + n.magnitude(X, Y)),
            )
        coefficients = [float(c) for c in self.env[name]]

        def polynomial(X, Y, n=inner, c=coefficients):
            K = n(X, Y)
            return sum(ci * K**i for i, ci in enumerate(c))

        def size(X, Y, n=inner, c=coefficients):
            M = n.magnitude(X, Y)
            return sum(abs(ci) * M**i for i, ci in enumerate(c))

        described = " + ".join(f"{c:g}·k^{i}" for i, c in enumerate(coefficients))
        return Node(
            f"{name}({inner.text})",
            polynomial,
            inner.bases + (f"{name}(k) = {described}",),
            size,
        )

    def outer(self, name: str) -> Node:
        for expected in ("(", "x", ")", name, "(", "z", ")"):
            self.take(expected)
        function_name = self.env.get(name, name)
        if function_name not in FUNCTIONS:
            raise self.fail(f"unknown function {function_name!r} (valid: {', '.join(FUNCTIONS)})")
        f = FUNCTIONS[function_name]
        return Node(
            f"{name}(x) {name}(z)",
            lambda X, Y, f=f: np.outer(f(X), f(Y)),
            (f"{name} = {function_name}",),
        )

    def composed(self, kernel_symbol: str) -> Node:
        for expected in ("(", "phi", "(", "x", ")", ",", "phi", "(", "z", ")", ")"):
            self.take(expected)
        map_name = self.env.get("phi", "identity")
        if map_name not in FEATURE_MAPS:
            raise self.fail(f"unknown feature map {map_name!r} (valid: {', '.join(FEATURE_MAPS)})")
        phi = FEATURE_MAPS[map_name]
        spec = self.env.get(kernel_symbol, kernel_symbol)
        name, params = kernel_from_call(spec)
        kernel = make_kernel(name, **params)
        return Node(
            f"{kernel_symbol}(phi(x), phi(z))",
            lambda X, Y, k=kernel, p=phi: k(p(X), p(Y)),
            (f"{kernel_symbol} = {spec}", f"phi = {map_name}"),
        )


def parse(text: str, env: dict[str, Any] | None = None) -> Node:
    """Parse a construction such as ``"k1 + k2"`` with symbols from ``env``."""
    return _Parser(text, dict(env or {})).parse()
