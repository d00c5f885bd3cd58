"""tests/gpiozero_conformance/run.py fails a run in which the remoteio
factory's tests did not pass, skipped ones included: gpiozero's fixture
skips every test of a factory it cannot reach (a missing server)."""
import importlib.util
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent

spec = importlib.util.spec_from_file_location("conformance_run", ROOT / "tests/gpiozero_conformance/run.py")
run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run)


def junit(path, cases):
    body = "".join(f'<testcase classname="test_real_pins" name="{name}">{inner}</testcase>'
                   for name, inner in cases)
    path.write_text(f'<?xml version="1.0"?><testsuites><testsuite>{body}</testsuite></testsuites>')
    return path


def test_a_run_where_every_test_was_skipped_is_a_failure(tmp_path):
    skipped = [(f"{name}[remoteio]", '<skipped message="no server"/>') for name in run.MUST_PASS]
    assert run.missing(junit(tmp_path / "r.xml", skipped)) == list(run.MUST_PASS)


def test_a_run_without_results_is_a_failure(tmp_path):
    assert run.missing(tmp_path / "none.xml") == list(run.MUST_PASS)


def test_a_run_where_they_all_passed_is_not(tmp_path):
    passed = [(f"{name}[remoteio]", "") for name in run.MUST_PASS]
    failed = [("test_output[remoteio]", "<failure/>")]
    assert run.missing(junit(tmp_path / "ok.xml", passed)) == []
    assert run.missing(junit(tmp_path / "bad.xml", passed[1:] + failed)) == [run.MUST_PASS[0]]
