"""The experiment registry: command name -> :class:`~kernelnet.experiments.base.Experiment`."""

from __future__ import annotations

from kernelnet.errors import ConfigError
from kernelnet.experiments import (
    activations,
    asym_svm,
    conv,
    fit,
    gradcheck,
    kernel_check,
    kernel_table,
    knn,
    mlp,
    mnist,
    optimizers,
    siamese,
    svm_primal,
)
from kernelnet.experiments.base import Experiment

REGISTRY: dict[str, Experiment] = {
    experiment.name: experiment
    for experiment in (
        svm_primal.EXPERIMENT,
        kernel_table.EXPERIMENT,
        mnist.EXPERIMENT,
        gradcheck.EXPERIMENT,
        asym_svm.EXPERIMENT,
        kernel_check.EXPERIMENT,
        knn.EXPERIMENT,
        conv.EXPERIMENT,
        activations.EXPERIMENT,
        optimizers.EXPERIMENT,
        fit.EXPERIMENT,
        siamese.EXPERIMENT,
        mlp.EXPERIMENT,
    )
}


def get_experiment(name: object, where: str = "") -> Experiment:
    """Look up an experiment; an unknown name is a config error listing the valid ones."""
    if name not in REGISTRY:
        prefix = f"{where}: " if where else ""
        raise ConfigError(
            f"{prefix}experiment: unknown experiment {name!r}; valid: {', '.join(REGISTRY)}"
        )
    return REGISTRY[name]
