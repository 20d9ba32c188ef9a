"""The layout's size rule (issue 15, README "Layout"): no module over 700 lines outside
migrations and tests, so that a reader finds one subject per module."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("audit", "benchmarks", "casework", "config", "workflows")
LIMIT = 700


def _application_modules() -> list[Path]:
    return [
        path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    ]


def test_the_application_has_modules_to_measure():
    modules = _application_modules()
    assert sum(path.name == "models.py" for path in modules) >= 4
    assert ROOT / "casework" / "policy" / "cases.py" in modules


def test_no_module_is_over_700_lines():
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in _application_modules()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > LIMIT
    }
    assert too_long == {}, f"split these modules (over {LIMIT} lines): {too_long}"
