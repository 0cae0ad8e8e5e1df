"""Every experiment's command name, module and help, known without importing the module.

The command line lists and describes experiments from here, so ``kernelnet --help`` and
tab completion never import NumPy-heavy experiment code; :mod:`kernelnet.experiments`
imports a module only when its experiment is used.
"""

from __future__ import annotations

from typing import NamedTuple


class Entry(NamedTuple):
    module: str  # kernelnet.experiments.<module> defines EXPERIMENT
    help: str  # one line for --help and listings
    details: str  # the rest of the command's --help: the maths, defaults, an example
    command: bool = True  # False: its command is written elsewhere (grade: kernelnet/cli)


CATALOG: dict[str, Entry] = {
    "svm-primal": Entry(
        "svm_primal",
        "Soft-margin SVM by batch gradient descent on the hinge loss, swept over epochs.",
        """\
The objective is E(w,b) = 1/2 ||w||^2 + C sum_i max(0, 1 - y_i (w.x_i + b)); training
starts at w = 0, b = 0 and every sweep point trains from zero, so results are exactly
reproducible. svm.update: simultaneous (both gradients at (w, b), the default) or
coordinate (b's gradient at the updated w); sweep both to compare. cv.folds=5
cross-validates each cell. Defaults: configs/svm-primal.yaml (iris_binary, C = 5, learning
rate 1e-3).

Examples:  kernelnet svm-primal --epochs 100
           kernelnet svm-primal --set svm.C=0.5,5,50 --epochs 30
           kernelnet svm-primal --set svm.update=simultaneous,coordinate""",
    ),
    "kernel-table": Entry(
        "kernel_table",
        "Kernel SVMs via the dual QP (cvxopt) on a dataset x kernel grid, with decision plots.",
        """\
Solves max sum(a) - 1/2 a'(yy' * K)a subject to 0 <= a <= C, y'a = 0 with cvxopt for every
dataset x kernel cell and prints test accuracy as a table; plots show decision functions,
margins and support vectors. A Gram matrix that is not positive semidefinite (sigmoid) is
flagged in the results. cv.folds=5 scores each cell by stratified 5-fold cross-validation;
a setting given as a distribution ({log_uniform: [low, high]}) is searched at random
(search.trials candidates). Defaults: configs/kernel-table.yaml.

Examples:  kernelnet kernel-table
           kernelnet kernel-table --kernels rbf --set kernel.gamma=0.05,0.2,1
           kernelnet kernel-table --set 'svm.C={log_uniform: [0.1, 10]}'""",
    ),
    "mnist": Entry(
        "mnist",
        "A multilayer perceptron on MNIST: minibatch training, validation, test, plots.",
        """\
The default config (configs/mnist.yaml) is the classic course setup: the first 55,000
training images for training, the last 5,000 for validation, the 10,000 test images for
test; raw pixels 0..255; one hidden layer of 100 ReLU units; plain SGD with learning rate
1e-3 decayed by 0.95 per epoch; batch 100; 5 epochs. configs/mnist-deep.yaml shows batch
norm, dropout, Adam and early stopping.

Examples:  kernelnet mnist

           kernelnet mnist --epochs 10 --set train.optimizer=adam""",
    ),
    "gradcheck": Entry(
        "gradcheck",
        "Check every layer's and loss's backward pass against finite differences.",
        """\
Each layer (affine, ReLU, leaky ReLU, sigmoid, tanh, batch norm in train and eval mode,
dropout, convolution, transposed convolution, pooling, upsampling), loss (softmax
cross-entropy, MSE, binary cross-entropy, multiclass hinge, the SVM hinge's subgradient) and
network (two MLPs, the summed-branch block, the skip network) is checked in float64 with
step h = 1e-5, for its input gradient and its parameter gradients. Thresholds: 1e-7 for smooth
functions, 1e-5 for kinked ones (inputs kept away from the kinks). Exits 1 if any fails.

Example:  kernelnet gradcheck --set check.name=batchnorm_train,softmax_cross_entropy""",
    ),
    "asym-svm": Entry(
        "asym_svm",
        "Asymmetric-cost kernel SVMs: sweep C1/C0 and watch false positives trade against "
        "false negatives.",
        """\
Minimizes 1/2 ||w||^2 + C0 sum_{y=-1} xi + C1 sum_{y=+1} xi through the dual with a
per-sample box 0 <= alpha_i <= C_i, for each cost ratio C1/C0 on each toy set, and reports
false positives, false negatives, accuracy and support vectors. Defaults:
configs/asym-svm.yaml (RBF, gamma 0.2, C0 = 1, ratios 0.1 ... 10).

Example:  kernelnet asym-svm --set svm.cost_ratio=0.2,1,5 --set data.dataset=moons""",
    ),
    "kernel-check": Entry(
        "kernel_check",
        "Is this a valid (Mercer) kernel? Random Gram matrices, verdicts, counterexamples.",
        """\
A kernel is valid iff every Gram matrix on every finite point set is symmetric positive
semidefinite. Each construction over the base kernels (k1 + k2, k1 - k2, a*k1, -a*k1,
f(x) f(z), k3(phi(x), phi(z)), p(k1), k1*k2, ...) is tested on random point sets; a
failure comes with a minimal counterexample (points, Gram matrix, a with a'Ka < 0).
Expressions are parsed by a small grammar, never evaluated as Python.

Example:  kernelnet kernel-check --set 'check.construction=[k1 - 0.5 * k1]'""",
    ),
    "knn": Entry(
        "knn",
        "k-nearest neighbours: accuracy against k, k chosen on validation, test reported once.",
        """\
Vectorized k-NN (Euclidean or cosine). Each dataset is split into train / validation /
test; k is swept, k is chosen on validation only (or by cross-validation with cv.folds),
and the test set is evaluated once, at the chosen k; on 2-D sets the decision boundaries
are drawn for several k. Ties: equal distances keep training order; a tied vote goes to
the class of the nearest tied neighbour. Defaults: configs/knn.yaml (toy sets and a
5,000-image MNIST subset).

Example:  kernelnet knn --set knn.metric=cosine --set data.dataset=mnist""",
    ),
    "conv": Entry(
        "conv",
        "Convolution modes (valid/same/full), and a stack's shapes with pooling and upsampling.",
        """\
Checks kernelnet's convolution against numpy.convolve in its three modes and prints, for
the configured stack (conv.layers: conv(F, k, s, p, d, bias), convT(F, k, s, p, op),
maxpool(k, s), avgpool(k, s), upsample(scale, mode=nearest|bilinear)), each layer's output
shape and parameter count with their formulas: out = floor((in + 2p - d(k - 1) - 1) / s) + 1,
weights = k*k*C_in*C_out; a forward pass through the real layers confirms the shapes. The
shipped stack is the assignment's 3x128x128 -> 32x64x64 -> 32x32x32 -> 32x64x64.

Examples:  kernelnet conv --set "conv.layers=['conv(8, k=3)', 'maxpool(2)']"
           kernelnet conv --set 'conv.input=[3, 224, 224]'""",
    ),
    "activations": Entry(
        "activations",
        "Activation and loss identities checked numerically, with their maximum errors.",
        """\
sign, ReLU and its derivative, sigmoid and softplus identities, softmax shift invariance
and Jacobian, the cross-entropy gradient, and the MSE-versus-cross-entropy gradient with
a sigmoid output, each with its maximum error over dense grids and random vectors; plots
of sigmoid(kx) sharpening, MSE saturating, and gradient norms through depth under each
initialization of activations.init (he, xavier, lecun, small), measured beside the
mean-field prediction. Defaults: configs/activations.yaml (2,001 grid points on [-10, 10],
depth 30, width 64).

Examples:  kernelnet activations
           kernelnet activations --set activations.init=he,xavier,lecun
           kernelnet activations --set activations.depth=100 --no-plots""",
    ),
    "optimizers": Entry(
        "optimizers",
        "How optimizers move: 2-D surfaces, MNIST loss curves, Adam and Nesterov checks.",
        """\
Trajectories of SGD, momentum, Nesterov, Adagrad, RMSProp and Adam on a plateau, an
elongated valley and Rosenbrock's function, loss curves of the same optimizers training
the MNIST MLP on a 5,000-image subset, and two checks: Adam's bias-corrected moments are
unbiased, and both usual forms of Nesterov momentum give the same iterates. Each surface
runs from rest and already moving (optimizer.start: the assignment's scenario, with
optimizer.prior_steps steps of history), with a ranking per start.
Defaults: configs/optimizers.yaml (all six optimizers, 300 steps, 3 MNIST epochs).

Examples:  kernelnet optimizers --set optimizer.name=sgd,adam
           kernelnet optimizers --set optimizer.momentum=0.5,0.99 --set mnist.epochs=1""",
    ),
    "fit": Entry(
        "fit",
        "What an activation can fit: regression networks on 1-D target functions.",
        """\
Fits sine, step, |x| and a cubic with identity, ReLU, tanh and sigmoid networks of a few
widths and depths (DEPTHxWIDTH), a block of summed branches (branches:DEPTHxWIDTH) and the
assignment's skip network y = (a1 + a2 + a3) W4 + b4 (skip:DEPTHxWIDTH; skip-chain: for the
chained reading), by full-batch Adam on the mean squared error, stopping early on held-out
points (fit.patience, fit.val_points); reports train and test MSE and plots the fitted
curves and the training curves with the best step and the stop marked. A linear network
can only fit a line: its curve's second differences are zero and it never beats the
least-squares line. Defaults: configs/fit.yaml.

Examples:  kernelnet fit --set fit.target=sine --set fit.activation=relu
           kernelnet fit --set 'fit.architecture=[1x8, 3x32]' --set fit.steps=500""",
    ),
    "siamese": Entry(
        "siamese",
        "A shared-weight two-tower network trained with the cosine loss on MNIST pairs.",
        """\
Both images of a pair go through the same tower (an MLP, weights shared); the cosine of
their embeddings is trained with L = -y cos (y = +1 for the same digit, -1 otherwise).
Reports test loss, pair accuracy and the mean cosine of same and different pairs per epoch.
Defaults: configs/siamese.yaml (4,000 training pairs, one hidden layer of 128, 5 epochs).

Examples:  kernelnet siamese
           kernelnet siamese --set siamese.embedding=8,32 --set siamese.epochs=2""",
    ),
    "mlp": Entry(
        "mlp",
        "A multilayer perceptron on any dataset: a shipped set or your own file, any classes.",
        """\
Trains kernelnet's MLPClassifier (He initialization, the one trainer, divergence checks) on
a shipped set or a CSV, .npz or LIBSVM file with any number of classes, standardizing
features on the training part, keeping the epoch with the best held-out accuracy.

Example:  kernelnet mlp --set data.dataset=my_data.csv --set model.hidden=[128]""",
    ),
    "mnist-table": Entry(
        "mnist_table",
        "The MNIST page's table of test errors, reproduced: k-NN, linear, RBF SVM, MLPs.",
        """\
One cell per method on the standard split: k-NN (Euclidean, k chosen on validation), a
linear classifier (softmax regression), the RBF kernel SVM (KernelSVM with its defaults:
one-vs-one, working-set decomposition over kernel rows in a bounded cache, libsvm's 1e-3
stopping rule), 2-layer networks with 300 and 1000 hidden units, 3-layer
300+100, and 800 units with cross-entropy. Each row shows its test error beside the
published one, its fit time and settings; a figure puts measured against published.
The shipped config trains on the first 10,000 images; data.train_size=55000 gives the
full table.

Example:  kernelnet mnist-table --set data.train_size=55000 --workers 2""",
    ),
    "grade": Entry(
        "grade",
        "Grade a class: every submission against an assignment's tests, one cell each.",
        """\
Each submission (a folder or a .zip; a class folder holds them) is graded in the sandbox as
one cell of the run: --workers and --scheduler spread the class, Ctrl-C keeps what is
graded and --resume finishes the rest. The run folder holds grades.csv (one row per
student), metrics.csv (one row per submission and test), each submission's results.json
(Gradescope's format) and grading.log in its cell folder, and report.html for the class.

Examples:  kernelnet grade hw3 submissions/ --workers 2
           kernelnet grade hw3 submissions/ --set 'skip=[mnist_two_layer_net]'""",
        command=False,
    ),
}
