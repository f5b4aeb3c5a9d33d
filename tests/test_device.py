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


def machine(
    monkeypatch, *, cores: int, usable: int, others: list[float], load: float = 0.0, own: float = 0.0
) -> None:
    """A machine of ``cores`` cores, ``usable`` of them this process's, where successive samples see
    ``others`` other runnable tasks, with a 1-minute load average ``load`` of which ``own`` is this
    process's."""
    samples = iter(others)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(usable)))
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(device, "_other_runnable", lambda: next(samples))
    monkeypatch.setattr(device, "_own_load", lambda: own)


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
        (8, 1, [], 1),  # one usable core: nothing to sample
    ],
)
def test_auto_threads_leaves_the_cores_others_hold(monkeypatch, cores, usable, others, want):
    machine(monkeypatch, cores=cores, usable=usable, others=others)
    assert device.auto_threads(samples=len(others), interval_s=0) == want


@pytest.mark.parametrize(
    "load, own, want",
    [
        (0.2, 0.0, 2),  # a quiet minute
        (1.1, 0.0, 1),  # others were busy a moment ago, idle now: one core stays theirs
        (1.1, 1.0, 2),  # the load was this process's own (a comparison's previous run)
        (3.0, 1.0, 1),
    ],
)
def test_auto_threads_counts_recent_load_of_others(monkeypatch, load, own, want):
    machine(monkeypatch, cores=2, usable=2, others=[0, 0, 0], load=load, own=own)
    assert device.auto_threads(samples=3, interval_s=0) == want


def test_own_load_is_this_process_cpu_share(monkeypatch):
    clock = {"wall": 1000.0, "cpu": 50.0}
    monkeypatch.setattr(device.time, "monotonic", lambda: clock["wall"])
    monkeypatch.setattr(device.time, "process_time", lambda: clock["cpu"])
    monkeypatch.setattr(device, "_last_sample", (1000.0, 50.0))
    clock.update(wall=1300.0, cpu=350.0)  # one core busy for 5 minutes
    assert device._own_load() == pytest.approx(1.0)
    clock.update(wall=1310.0, cpu=355.0)  # half a core for 10 s: averaged over a minute
    assert device._own_load() == pytest.approx(5 / 60)


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
