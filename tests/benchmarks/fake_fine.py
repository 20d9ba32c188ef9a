"""A benchmark module that reports two figures, one of them scaled (for the runner's tests)."""


def run(report, scale: float = 1.0) -> None:
    report("fake: fine", 2.0, "req/s", ">= 1 req/s")
    report("fake: scale seen", scale, "x", "(setup)")
