"""Support vector machines: primal gradient descent and the dual QP."""
