"""kernelnet: classic machine-learning experiments from first principles.

The Python API (imported on first use, so ``import kernelnet`` stays instant):
``kernelnet.run(experiment, ...)``, ``kernelnet.load_run(path_or_id)``, ``kernelnet.Run`` and
the scikit-learn-style estimator ``kernelnet.KernelSVM``.
"""

__version__ = "0.1.0"
__all__ = ["KernelSVM", "Run", "load_run", "run"]
_HOMES = {
    "KernelSVM": "kernelnet.svm.estimator",
    "Run": "kernelnet.api",
    "load_run": "kernelnet.api",
    "run": "kernelnet.api",
}


def __getattr__(name: str):
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'kernelnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
