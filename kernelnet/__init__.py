"""kernelnet: classic machine-learning experiments from first principles.

The Python API (imported on first use, so ``import kernelnet`` stays instant):
``kernelnet.run(experiment, ...)``, ``kernelnet.load_run(path_or_id)`` and ``kernelnet.Run``.
"""

__version__ = "0.1.0"
__all__ = ["Run", "load_run", "run"]


def __getattr__(name: str):
    if name in __all__:
        from kernelnet import api

        return getattr(api, name)
    raise AttributeError(f"module 'kernelnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
