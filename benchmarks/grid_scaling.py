"""Grid execution time with the three executors, measured in one process.

Two 64-cell grids, timing only the cell phase (the executor running every cell; the
report and plots are drawn once by the client whatever the executor):
- kernel-table: 4 datasets x 4 kernels x 4 values of C (cells of a few milliseconds);
- kernel-check: 16 constructions x 4 seeds (1000 random Gram spectra per cell).
Each grid runs serially, with 2 local worker processes, and on a 2-worker Dask
LocalCluster; speed-ups are against serial. The machine has 2 cores.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from kernelnet.config import expand, resolve
from kernelnet.executors import DaskExecutor, ProcessExecutor, SerialExecutor
from kernelnet.experiments import REGISTRY
from kernelnet.experiments.kernel_check import CONSTRUCTIONS
from kernelnet.runs import RunDir

GRIDS = {
    "kernel-table": {"svm": {"C": [0.25, 1.0, 4.0, 16.0]}},
    "kernel-check": {
        "seed": [0, 1, 2, 3],
        "check": {
            "trials": 1000,
            "construction": CONSTRUCTIONS
            + ["k1 + k3", "k2 * k3", "p(k2)", "a * k2", "k1 - a * k1", "k2 + k3"],
        },
    },
}


def cell_phase(name: str, executor, folder: Path) -> float:
    experiment = REGISTRY[name]
    cells = expand(experiment.schema, resolve(experiment.schema, GRIDS[name], {}))
    assert len(cells) == 64
    run = RunDir.create(folder, name)
    started = time.perf_counter()
    results = list(executor.run(experiment, cells, run))
    seconds = time.perf_counter() - started
    assert len(results) == 64 and all(r.ok for r in results)
    return seconds


def main() -> None:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        LocalCluster = None
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        cluster = client = None
        if LocalCluster is not None:
            cluster = LocalCluster(
                n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
            )
            client = Client(cluster)
        try:
            for name in GRIDS:
                serial = cell_phase(name, SerialExecutor(), root)
                pool = cell_phase(name, ProcessExecutor(2), root)
                line = (
                    f"{name:13s} 64 cells: serial {serial:6.2f} s | 2 workers {pool:6.2f} s "
                    f"({serial / pool:.2f}x)"
                )
                if client is not None:
                    dask = cell_phase(name, DaskExecutor(client=client), root)
                    line += f" | 2-worker Dask {dask:6.2f} s ({serial / dask:.2f}x)"
                print(line, flush=True)
        finally:
            if client is not None:
                client.close()
                cluster.close()


if __name__ == "__main__":
    main()
