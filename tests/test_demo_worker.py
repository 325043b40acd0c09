"""The demo's background worker: clicks queued while the model runs are all predicted, in order, and one frame
is asked for after the last one."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from iseg.clicks import Click
from iseg.demo import ClickController, PredictionWorker

WAIT_S = 30


class GatedPredictor:
    """Predicts a constant map, but each call waits until the test opens the gate."""

    def __init__(self, fail_at: int | None = None):
        self.gate = threading.Semaphore(0)
        self.started = threading.Semaphore(0)
        self.calls: list[list[Click]] = []
        self.fail_at = fail_at

    def set_image(self, image):
        self.shape = image.shape[:2]

    def predict(self, clicks, prev_prob):
        self.started.release()
        assert self.gate.acquire(timeout=WAIT_S), "the test never opened the gate"
        self.calls.append(list(clicks))
        if len(clicks) == self.fail_at:
            raise RuntimeError("model exploded")
        return np.full(self.shape, 0.9, np.float32)


@pytest.fixture
def setup():
    predictor = GatedPredictor()
    controller = ClickController(predictor, np.zeros((20, 30, 3), np.uint8))
    done = []
    worker = PredictionWorker(controller, lambda error: done.append((controller.clicks, error)))
    return predictor, controller, worker, done


def test_clicks_during_a_prediction_are_kept_in_order_and_one_frame_follows(setup):
    predictor, controller, worker, done = setup
    assert worker.click(1, 1, True)
    assert predictor.started.acquire(timeout=WAIT_S)  # the model runs on the first click
    assert worker.busy and controller.pending == [Click(1, 1, True)]
    assert worker.click(2, 2, False) and worker.click(3, 3, True)  # queued at once, the model still busy
    assert not worker.click(50, 50, True)
    assert controller.pending == [Click(1, 1, True), Click(2, 2, False), Click(3, 3, True)]
    for _ in range(3):
        predictor.gate.release()
    worker.wait()
    assert not worker.busy and controller.pending == []
    expected = [Click(1, 1, True), Click(2, 2, False), Click(3, 3, True)]
    assert predictor.calls == [expected[:1], expected[:2], expected]
    assert done == [(expected, None)]  # one frame, after the last click


def test_a_click_after_the_burst_starts_a_new_round(setup):
    predictor, controller, worker, done = setup
    predictor.gate.release()
    worker.click(1, 1, True)
    worker.wait()
    predictor.gate.release()
    worker.click(2, 2, True)
    worker.wait()
    assert [len(clicks) for clicks, _ in done] == [1, 2]


def test_an_error_is_reported_and_the_queue_dropped():
    predictor = GatedPredictor(fail_at=2)
    controller = ClickController(predictor, np.zeros((20, 30, 3), np.uint8))
    done = []
    worker = PredictionWorker(controller, lambda error: done.append(error))
    for col in (1, 2, 3):
        worker.click(1, col, True)
    for _ in range(3):
        predictor.gate.release()
    worker.wait()
    assert controller.clicks == [Click(1, 1, True)] and controller.pending == [] and not worker.busy
    assert len(done) == 1 and "model exploded" in str(done[0])
