"""Tests of kernelnet.grading."""
