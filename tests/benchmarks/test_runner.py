"""The benchmark runner (``python -m benchmarks``): a failing module is recorded and the
others still report; results.json holds every figure measured; the exit code says so."""

from __future__ import annotations

import json

from benchmarks.__main__ import Runner

BROKEN = "tests.benchmarks.fake_broken"
FINE = "tests.benchmarks.fake_fine"
MISSING = "tests.benchmarks.no_such_module"


def _read(path):
    return json.loads(path.read_text())


def test_a_failing_module_is_recorded_and_the_others_still_report(tmp_path):
    output = tmp_path / "results.json"
    runner = Runner(output, options={"scale": 0.25})

    runner.run_all([BROKEN, FINE, MISSING])

    document = _read(output)
    figures = {(f["module"], f["name"]): (f["value"], f["unit"]) for f in document["figures"]}
    assert figures == {
        (BROKEN, "fake: measured before the failure"): (1.5, "ms"),
        (FINE, "fake: fine"): (2.0, "req/s"),
        (FINE, "fake: scale seen"): (0.25, "x"),
    }
    statuses = {m["module"]: m["status"] for m in document["modules"]}
    assert statuses == {BROKEN: "failed", FINE: "ok", MISSING: "failed"}
    assert document["failed"] == [BROKEN, MISSING]
    broken = next(m for m in document["modules"] if m["module"] == BROKEN)
    assert broken["error"] == "RuntimeError: deliberately broken benchmark"
    assert "fake_broken.py" in broken["traceback"]
    missing = next(m for m in document["modules"] if m["module"] == MISSING)
    assert missing["error"].startswith("ModuleNotFoundError")
    assert runner.exit_code == 1


def test_all_modules_passing_exit_zero_and_a_failed_teardown_does_not(tmp_path):
    output = tmp_path / "results.json"
    runner = Runner(output)

    runner.run_all([FINE])

    document = _read(output)
    assert document["failed"] == []
    assert [f["name"] for f in document["figures"]] == ["fake: fine", "fake: scale seen"]
    assert document["figures"][1]["value"] == 1.0  # no --scale: the module's default
    assert runner.exit_code == 0

    runner.teardown = "failed: OperationalError: database is being accessed by other users"
    runner.write()
    assert _read(output)["teardown"].startswith("failed")
    assert runner.exit_code == 1


def test_results_are_written_after_each_figure(tmp_path):
    """A run that dies later (killed, a crashing teardown) keeps what was measured."""
    output = tmp_path / "results.json"
    runner = Runner(output)
    runner._current = FINE

    runner.report("fake: first", 3.0, "ms", "")

    assert [f["name"] for f in _read(output)["figures"]] == ["fake: first"]
