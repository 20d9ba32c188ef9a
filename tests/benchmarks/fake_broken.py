"""A benchmark module that reports one figure and then fails (for the runner's tests)."""


def run(report) -> None:
    report("fake: measured before the failure", 1.5, "ms", "< 2 ms")
    raise RuntimeError("deliberately broken benchmark")
