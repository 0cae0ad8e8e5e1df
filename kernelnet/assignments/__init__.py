"""The assignments kernelnet ships, as strict YAML specs (read by kernelnet.grading.spec)."""
