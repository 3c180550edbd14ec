"""`make bench`: Hookline measured beside the raw HTTP ceiling and the naive RQ alternative.

Not collected by pytest (addopts has --ignore=tests/perf); run `python -m tests.perf.bench`.
"""
