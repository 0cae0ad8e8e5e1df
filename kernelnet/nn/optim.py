"""First-order optimizers. Hyperparameters are attributes; per-parameter state (velocity,
moment estimates) is private and keyed by parameter name. ``step(params, grads)`` updates
the parameter arrays in place (they belong to the model being trained)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Params = dict[str, np.ndarray]


@dataclass
class SGD:
    """w <- w - lr * g"""

    lr: float = 1e-3
    _scratch: Params = field(default_factory=dict, repr=False)  # reused for lr * g

    def step(self, params: Params, grads: Params) -> None:
        for name, grad in grads.items():
            scratch = self._scratch.get(name)
            if scratch is None or scratch.shape != grad.shape or scratch.dtype != grad.dtype:
                scratch = self._scratch[name] = np.empty_like(grad)
            params[name] -= np.multiply(grad, self.lr, out=scratch)


@dataclass
class Momentum:
    """v <- mu v - lr g;  w <- w + v   (heavy ball)"""

    lr: float = 1e-3
    momentum: float = 0.9
    _velocity: Params = field(default_factory=dict, repr=False)

    def step(self, params: Params, grads: Params) -> None:
        for name, grad in grads.items():
            v = self._velocity.get(name)
            v = -self.lr * grad if v is None else self.momentum * v - self.lr * grad
            self._velocity[name] = v
            params[name] += v


@dataclass
class Nesterov:
    """Nesterov momentum in the "look-ahead folded in" form (Bengio et al. 2013):
    v' = mu v - lr g(w);  w <- w - mu v + (1 + mu) v'.
    It produces the same iterates as evaluating the gradient at w + mu v."""

    lr: float = 1e-3
    momentum: float = 0.9
    _velocity: Params = field(default_factory=dict, repr=False)

    def step(self, params: Params, grads: Params) -> None:
        for name, grad in grads.items():
            v = self._velocity.get(name, np.zeros_like(grad))
            v_new = self.momentum * v - self.lr * grad
            self._velocity[name] = v_new
            params[name] += -self.momentum * v + (1 + self.momentum) * v_new


@dataclass
class Adagrad:
    """G <- G + g^2;  w <- w - lr g / (sqrt(G) + eps)"""

    lr: float = 1e-2
    eps: float = 1e-8
    _sum_sq: Params = field(default_factory=dict, repr=False)

    def step(self, params: Params, grads: Params) -> None:
        for name, grad in grads.items():
            total = self._sum_sq.get(name, 0.0) + grad * grad
            self._sum_sq[name] = total
            params[name] -= self.lr * grad / (np.sqrt(total) + self.eps)


@dataclass
class RMSProp:
    """E <- rho E + (1 - rho) g^2;  w <- w - lr g / (sqrt(E) + eps)"""

    lr: float = 1e-3
    decay: float = 0.99
    eps: float = 1e-8
    _mean_sq: Params = field(default_factory=dict, repr=False)

    def step(self, params: Params, grads: Params) -> None:
        for name, grad in grads.items():
            mean = self._mean_sq.get(name, np.zeros_like(grad))
            mean = self.decay * mean + (1 - self.decay) * grad * grad
            self._mean_sq[name] = mean
            params[name] -= self.lr * grad / (np.sqrt(mean) + self.eps)


@dataclass
class Adam:
    """m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  m^ = m/(1-b1^t);  v^ = v/(1-b2^t);
    w <- w - lr m^ / (sqrt(v^) + eps)   (Kingma & Ba 2015, with bias correction)."""

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    _m: Params = field(default_factory=dict, repr=False)
    _v: Params = field(default_factory=dict, repr=False)
    _t: dict[str, int] = field(default_factory=dict, repr=False)

    def moments(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The bias-corrected (m^, v^) of a parameter after its latest step."""
        t = self._t[name]
        return self._m[name] / (1 - self.beta1**t), self._v[name] / (1 - self.beta2**t)

    def step(self, params: Params, grads: Params) -> None:
        for name, grad in grads.items():
            self._t[name] = self._t.get(name, 0) + 1
            self._m[name] = self.beta1 * self._m.get(name, 0.0) + (1 - self.beta1) * grad
            self._v[name] = self.beta2 * self._v.get(name, 0.0) + (1 - self.beta2) * grad * grad
            m_hat, v_hat = self.moments(name)
            params[name] -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


OPTIMIZERS = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": Adagrad,
    "rmsprop": RMSProp,
    "adam": Adam,
}


def optimizer_state(optimizer) -> tuple[dict[str, float], Params]:
    """(hyperparameters, per-parameter state arrays ``"<slot>/<param>"``): everything a
    checkpoint needs to continue exactly (the decayed lr included)."""
    hyper, arrays = {}, {}
    for name in optimizer.__dataclass_fields__:
        value = getattr(optimizer, name)
        if not name.startswith("_"):
            hyper[name] = float(value)
        elif name != "_scratch":  # scratch is a reused buffer, not state
            arrays |= {f"{name}/{param}": np.asarray(v) for param, v in value.items()}
    return hyper, arrays


def load_optimizer_state(optimizer, hyper: dict[str, float], arrays: Params) -> None:
    """Inverse of :func:`optimizer_state` (step counts come back as ints)."""
    for name, value in hyper.items():
        setattr(optimizer, name, float(value))
    for name in optimizer.__dataclass_fields__:
        if name.startswith("_") and name != "_scratch":
            slot = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.split("/", 1)[0] == name}
            if name == "_t":
                slot = {k: int(v) for k, v in slot.items()}
            setattr(optimizer, name, slot)


def make_optimizer(name: str, **hyper: float):
    """Build an optimizer by name, passing only the hyperparameters it takes."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
    cls = OPTIMIZERS[name]
    accepted = {k for k in cls.__dataclass_fields__ if not k.startswith("_")}
    return cls(**{k: v for k, v in hyper.items() if k in accepted})
