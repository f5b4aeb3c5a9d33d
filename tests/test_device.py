"""CPU threads: an explicit count, the automatic count from the free cores, and bad values."""

import os

import pytest
import torch

from coe import device


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def machine(monkeypatch, *, cores: int, usable: int, others: list[float]) -> None:
    """A machine of ``cores`` cores, ``usable`` of them this process's, where successive samples see
    ``others`` other runnable tasks."""
    samples = iter(others)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(usable)))
    monkeypatch.setattr(device, "_other_runnable", lambda: next(samples))


@pytest.mark.parametrize(
    "cores, usable, others, want",
    [
        (2, 2, [0, 0, 0, 0], 2),  # free: every usable core
        (2, 2, [1, 1, 1, 0], 1),  # one core taken most of the time
        (2, 2, [1, 0, 0, 0], 2),  # a blip in one sample of four does not count
        (2, 2, [1, 1, 0, 0], 1),  # half the time counts
        (2, 2, [4, 5, 3, 4], 1),  # oversubscribed: one thread, never zero
        (8, 4, [2, 2, 2, 2], 4),  # others fit beside this process's 4 cores
        (8, 4, [6, 6, 6, 6], 2),
    ],
)
def test_auto_threads_leaves_the_cores_others_hold(monkeypatch, cores, usable, others, want):
    machine(monkeypatch, cores=cores, usable=usable, others=others)
    assert device.auto_threads(samples=len(others), interval_s=0) == want


def test_configure_threads_sets_torch(monkeypatch, restore_threads):
    assert device.configure_threads(1) == 1 and torch.get_num_threads() == 1
    machine(monkeypatch, cores=3, usable=3, others=[1] * 10)
    monkeypatch.setattr(device.time, "sleep", lambda s: None)
    assert device.configure_threads(None) == 2 and torch.get_num_threads() == 2


def test_other_runnable_reads_the_machine():
    n = device._other_runnable()
    assert n >= 0 and (not os.path.exists("/proc/loadavg") or float(n).is_integer())


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_configure_threads_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match=r"runtime\.threads=.*positive integer"):
        device.configure_threads(bad)
