"""Grading student submissions against kernelnet's references (issue 19)."""
