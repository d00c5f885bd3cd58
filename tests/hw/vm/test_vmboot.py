"""vm.py boots again when the guest died before the command started, or its kernel panicked (host only)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vm  # noqa: E402


def _runner(monkeypatch, outcomes):
    calls = []

    def run_once(*args):
        calls.append(args)
        return outcomes[len(calls) - 1]
    monkeypatch.setattr(vm.vmsetup, "artifacts", lambda: {})
    monkeypatch.setattr(vm.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(vm.os.path, "exists", lambda path: True)
    monkeypatch.setattr(vm, "_run_once", run_once)
    return calls


def test_a_guest_that_died_while_booting_is_booted_again_and_the_command_runs(monkeypatch):
    calls = _runner(monkeypatch, [(vm.EXIT_VM_FAILED, "panic", False), (0, "ran", True)])
    assert vm.run_in_vm(["true"], timeout=600) == (0, "ran")
    assert len(calls) == 2


def test_a_guest_that_died_after_the_command_started_is_not_booted_again(monkeypatch):
    calls = _runner(monkeypatch, [(vm.EXIT_VM_FAILED, "died", True), (0, "ran twice", True)])
    assert vm.run_in_vm(["true"], timeout=600) == (vm.EXIT_VM_FAILED, "died")
    assert len(calls) == 1


def test_boots_stop_after_three_failures_and_the_failure_is_reported(monkeypatch):
    calls = _runner(monkeypatch, [(vm.EXIT_VM_FAILED, "panic", False)] * 4)
    assert vm.run_in_vm(["true"], timeout=600) == (vm.EXIT_VM_FAILED, "panic")
    assert len(calls) == vm.BOOT_ATTEMPTS == 3


PANIC = "[ 84.5] Kernel panic - not syncing: Fatal exception in interrupt"


def test_a_guest_kernel_that_panicked_mid_command_runs_the_command_again_once(monkeypatch):
    calls = _runner(monkeypatch, [(vm.EXIT_VM_FAILED, PANIC, True), (0, "ran", True)])
    assert vm.run_in_vm(["true"], timeout=600) == (0, "ran")
    assert len(calls) == 2


def test_a_second_panic_mid_command_is_the_failure_reported(monkeypatch):
    again = PANIC + " again"
    died, died_again = (vm.EXIT_VM_FAILED, PANIC, True), (vm.EXIT_VM_FAILED, again, True)
    calls = _runner(monkeypatch, [died, died_again, (0, "ran", True)])
    assert vm.run_in_vm(["true"], timeout=600) == (vm.EXIT_VM_FAILED, again)
    assert len(calls) == 2


def test_a_panic_mid_command_is_not_run_again_when_the_time_left_cannot_hold_a_run(monkeypatch):
    clock = iter([0.0, 0.0, 400.0, 400.0, 400.0])   # t0, the boot's start, its end...
    monkeypatch.setattr(vm.time, "monotonic", lambda: next(clock))
    calls = _runner(monkeypatch, [(vm.EXIT_VM_FAILED, PANIC, True), (0, "ran", True)])
    assert vm.run_in_vm(["true"], timeout=600) == (vm.EXIT_VM_FAILED, PANIC)
    assert len(calls) == 1
