"""Neural networks with explicit forward/backward passes (row-major: a batch is (N, D))."""
