"""Support vector machines: primal gradient descent, and the dual solved by working-set
decomposition over kernel rows (:mod:`kernelnet.svm.workingset`, KernelSVM's default), cvxopt,
SMO or the blocked solver."""
