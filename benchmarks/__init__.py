"""Speed benchmarks of autograd_lite against hand-written numpy (run: python -m benchmarks.run).

Not tests: nothing here asserts a time. See docs/speed.md.
"""
