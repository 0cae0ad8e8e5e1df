"""kernelnet: classic machine-learning experiments from first principles.

The Python API (imported on first use, so ``import kernelnet`` stays instant):
``kernelnet.run(experiment, ...)``, ``kernelnet.load_run(path_or_id)``, ``kernelnet.Run`` and
the scikit-learn-style estimators ``KernelSVM``, ``LinearSVM``, ``MLPClassifier`` and
``KNeighborsClassifier``.
"""

__version__ = "0.1.0"
_HOMES = {
    "KNeighborsClassifier": "kernelnet.knn",
    "LinearSVM": "kernelnet.svm.linear",
    "MLPClassifier": "kernelnet.nn.estimator",
    "KernelSVM": "kernelnet.svm.estimator",
    "Run": "kernelnet.api",
    "load_run": "kernelnet.api",
    "run": "kernelnet.api",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'kernelnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
