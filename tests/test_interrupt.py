"""Ctrl-C is never lost (issue 20): one that arrives while a checkpoint is written, where Python drops it, still
stops the run once the checkpoint is complete."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from iseg.interrupt import guarded, raise_pending
from iseg.models import build_model, load_checkpoint, model_payload, save_checkpoint


class _Finalizer:
    """An object whose finalizer sends SIGINT: the KeyboardInterrupt is raised inside `__del__`, where Python
    prints "Exception ignored" and drops it (what happens when Ctrl-C lands in a finalizer during torch.save)."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture(autouse=True)
def default_sigint():
    """Python's own SIGINT handler for the test (a background job starts with SIGINT ignored), restored after."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def interrupted_save(monkeypatch):
    """torch.save that receives a Ctrl-C in the middle of the write, dropped where it lands."""
    real_save = torch.save

    def save(obj, path, *args, **kwargs):
        _Finalizer()  # collected at once: the interrupt lands in its __del__
        real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the dropped interrupt
def test_a_dropped_interrupt_during_a_checkpoint_write_is_raised_once_the_file_is_complete(tmp_path,
                                                                                          interrupted_save):
    model = build_model("ifpn_tiny")
    with pytest.raises(KeyboardInterrupt):
        with guarded():
            save_checkpoint(tmp_path / "last.pt", model_payload(model, epoch=2))
            pytest.fail("the run went on after Ctrl-C")
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2  # the checkpoint is whole
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_without_an_interrupt_nothing_is_raised(tmp_path):
    with guarded():
        save_checkpoint(tmp_path / "last.pt", model_payload(build_model("ifpn_tiny")))
    raise_pending()


def test_an_ordinary_interrupt_propagates_at_once():
    with pytest.raises(KeyboardInterrupt):
        with guarded():
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                pass
            pytest.fail("the interrupt was not raised")


def test_an_ignored_sigint_stays_ignored():
    """A run started with SIGINT ignored (nohup, a background job) is not made interruptible by the guard."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with guarded():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
