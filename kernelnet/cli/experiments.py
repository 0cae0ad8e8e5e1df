"""One command per experiment, plus ``run`` for any config file. Thin: parse, call, print."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from kernelnet.cli.launch import launch, launch_files
from kernelnet.cli.options import CommonOptions, with_common_options
from kernelnet.experiments import REGISTRY


def register(app: typer.Typer) -> None:
    @app.command(
        "svm-primal",
        help=REGISTRY["svm-primal"].help
        + """

The objective is E(w,b) = 1/2 ||w||^2 + C sum_i max(0, 1 - y_i (w.x_i + b)); training
starts at w = 0, b = 0 and every sweep point trains from zero, so results are exactly
reproducible. Defaults: configs/svm-primal.yaml (iris_binary, C = 5, learning rate 1e-3).

Examples:  kernelnet svm-primal --epochs 100
           kernelnet svm-primal --set svm.C=0.5,5,50 --epochs 30""",
    )
    @with_common_options
    def svm_primal(
        common: CommonOptions,
        epochs: Annotated[
            Optional[str],
            typer.Option(help="Training lengths to sweep, comma-separated (e.g. 1,3,10,30,100)."),
        ] = None,
    ) -> None:
        launch("svm-primal", common, {"svm.epochs": ("--epochs", epochs)})

    @app.command(
        "kernel-table",
        help=REGISTRY["kernel-table"].help
        + """

Solves max sum(a) - 1/2 a'(yy' * K)a subject to 0 <= a <= C, y'a = 0 with cvxopt for every
dataset x kernel cell and prints test accuracy as a table; plots show decision functions,
margins and support vectors. A Gram matrix that is not positive semidefinite (sigmoid) is
flagged in the results. Defaults: configs/kernel-table.yaml.

Examples:  kernelnet kernel-table
           kernelnet kernel-table --kernels rbf --set kernel.gamma=0.05,0.2,1""",
    )
    @with_common_options
    def kernel_table(
        common: CommonOptions,
        kernels: Annotated[
            Optional[str],
            typer.Option(help="Kernels to run, comma-separated (linear,poly,sigmoid,rbf)."),
        ] = None,
        datasets: Annotated[
            Optional[str],
            typer.Option(help="Datasets to run, comma-separated (moons,circles,linear,xor)."),
        ] = None,
    ) -> None:
        launch(
            "kernel-table",
            common,
            {"kernel.name": ("--kernels", kernels), "data.dataset": ("--datasets", datasets)},
        )

    @app.command(
        "mnist",
        help=REGISTRY["mnist"].help
        + """

The default config (configs/mnist.yaml) is the classic course setup: the first 55,000
training images for training, the last 5,000 for validation, the 10,000 test images for
test; raw pixels 0..255; one hidden layer of 100 ReLU units; plain SGD with learning rate
1e-3 decayed by 0.95 per epoch; batch 100; 5 epochs. configs/mnist-deep.yaml shows batch
norm, dropout, Adam and early stopping.

Examples:  kernelnet mnist

           kernelnet mnist --epochs 10 --set train.optimizer=adam""",
    )
    @with_common_options
    def mnist(
        common: CommonOptions,
        epochs: Annotated[Optional[str], typer.Option(help="Number of training epochs.")] = None,
    ) -> None:
        launch("mnist", common, {"train.epochs": ("--epochs", epochs)})

    @app.command(
        "gradcheck",
        help=REGISTRY["gradcheck"].help
        + """

Each layer (affine, ReLU, leaky ReLU, sigmoid, tanh, batch norm in train and eval mode,
dropout) and loss (softmax cross-entropy, MSE, binary cross-entropy, multiclass hinge), and
two small MLPs, is checked in float64 with step h = 1e-5. Thresholds: 1e-7 for smooth
functions, 1e-5 for kinked ones (inputs kept away from the kinks). Exits 1 if any fails.

Example:  kernelnet gradcheck --set check.name=batchnorm_train,softmax_cross_entropy""",
    )
    @with_common_options
    def gradcheck(common: CommonOptions) -> None:
        launch("gradcheck", common, {})

    @app.command(
        "asym-svm",
        help=REGISTRY["asym-svm"].help
        + """

Minimizes 1/2 ||w||^2 + C0 sum_{y=-1} xi + C1 sum_{y=+1} xi through the dual with a
per-sample box 0 <= alpha_i <= C_i, for each cost ratio C1/C0 on each toy set, and reports
false positives, false negatives, accuracy and support vectors. Defaults:
configs/asym-svm.yaml (RBF, gamma 0.2, C0 = 1, ratios 0.1 ... 10).

Example:  kernelnet asym-svm --set svm.cost_ratio=0.2,1,5 --set data.dataset=moons""",
    )
    @with_common_options
    def asym_svm(common: CommonOptions) -> None:
        launch("asym-svm", common, {})

    @app.command(
        "kernel-check",
        help=REGISTRY["kernel-check"].help
        + """

A kernel is valid iff every Gram matrix on every finite point set is symmetric positive
semidefinite. Each construction over the base kernels (k1 + k2, k1 - k2, a*k1, -a*k1,
f(x) f(z), k3(phi(x), phi(z)), p(k1), k1*k2, ...) is tested on random point sets; a
failure comes with a minimal counterexample (points, Gram matrix, a with a'Ka < 0).
Expressions are parsed by a small grammar, never evaluated as Python.

Example:  kernelnet kernel-check --set 'check.construction=[k1 - 0.5 * k1]'""",
    )
    @with_common_options
    def kernel_check(common: CommonOptions) -> None:
        launch("kernel-check", common, {})

    @app.command(
        "knn",
        help=REGISTRY["knn"].help
        + """

Vectorized k-NN (Euclidean or cosine). Each dataset is split into train / validation /
test; k is swept, k is chosen on validation only, and the test set is evaluated once, at the
chosen k. Ties: equal distances keep training order; a tied vote goes to the class of the
nearest tied neighbour. Defaults: configs/knn.yaml (toy sets and a 5,000-image MNIST subset).

Example:  kernelnet knn --set knn.metric=cosine --set data.dataset=mnist""",
    )
    @with_common_options
    def knn(common: CommonOptions) -> None:
        launch("knn", common, {})

    @app.command(
        "conv",
        help=REGISTRY["conv"].help
        + """

Checks kernelnet's convolution against numpy.convolve in its three modes and prints, for
the configured stack (conv.layers, e.g. "conv(64, k=3, s=2, p=1, d=1, bias=false)"), each
layer's output shape and parameter count: out = floor((in + 2p - d(k - 1) - 1) / s) + 1,
weights = k*k*C_in*C_out.

Example:  kernelnet conv --set 'conv.input=[3, 224, 224]'""",
    )
    @with_common_options
    def conv(common: CommonOptions) -> None:
        launch("conv", common, {})

    @app.command(
        "activations",
        help=REGISTRY["activations"].help
        + """

sign, ReLU and its derivative, sigmoid and softplus identities, softmax shift invariance
and Jacobian, the cross-entropy gradient, and the MSE-versus-cross-entropy gradient with
a sigmoid output, each with its maximum error over dense grids and random vectors; plots
of sigmoid(kx) sharpening, MSE saturating, and gradient norms through depth.""",
    )
    @with_common_options
    def activations(common: CommonOptions) -> None:
        launch("activations", common, {})

    @app.command(
        "optimizers",
        help=REGISTRY["optimizers"].help
        + """

Trajectories of SGD, momentum, Nesterov, Adagrad, RMSProp and Adam on a plateau, an
elongated valley and Rosenbrock's function, loss curves of the same optimizers training
the MNIST MLP on a 5,000-image subset, and two checks: Adam's bias-corrected moments are
unbiased, and both usual forms of Nesterov momentum give the same iterates.""",
    )
    @with_common_options
    def optimizers(common: CommonOptions) -> None:
        launch("optimizers", common, {})

    @app.command(
        "fit",
        help=REGISTRY["fit"].help
        + """

Fits sine, step, |x| and a cubic with identity, ReLU, tanh and sigmoid networks of a few
widths and depths (DEPTHxWIDTH) and a block of summed branches (branches:DEPTHxWIDTH),
by full-batch Adam on the mean squared error; reports train and test MSE and plots the
fitted curves. A linear network can only fit a line: its curve's second differences are
zero and it never beats the least-squares line.""",
    )
    @with_common_options
    def fit(common: CommonOptions) -> None:
        launch("fit", common, {})

    @app.command(
        "siamese",
        help=REGISTRY["siamese"].help
        + """

Both images of a pair go through the same tower (an MLP, weights shared); the cosine of
their embeddings is trained with L = -y cos (y = +1 for the same digit, -1 otherwise).
Reports test loss, pair accuracy and the mean cosine of same and different pairs per epoch.""",
    )
    @with_common_options
    def siamese(common: CommonOptions) -> None:
        launch("siamese", common, {})

    @app.command(
        "run",
        help="""Run one or more config files; each file's `experiment:` key
picks the experiment. The common options apply to every file.

Example:  kernelnet run configs/kernel-table.yaml --set svm.C=10""",
    )
    @with_common_options
    def run(
        common: CommonOptions,
        configs: Annotated[
            Optional[list[Path]], typer.Argument(help="Config files to run, in order.")
        ] = None,
    ) -> None:
        launch_files(list(configs or []), common)
