"""kernelnet: classic machine-learning experiments from first principles."""

__version__ = "0.1.0"
