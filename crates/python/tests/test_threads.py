"""Several Python threads on one pipeline: the GIL is released while the engine computes, and
concurrent calls give the sequential results."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from chronos2 import Chronos2Pipeline
from conftest import MODELS, pipeline


def batches():
    rng = np.random.default_rng(7)
    return [
        [np.cumsum(rng.normal(size=n)).astype(np.float32) + 50 for n in (60, 90, 75)],
        [rng.normal(size=(2, 80)).astype(np.float32)],
        np.cumsum(rng.normal(size=(3, 1, 100)), axis=2),
        [{"target": rng.normal(size=64), "past_covariates": {"x": rng.normal(size=64)},
          "future_covariates": {"x": rng.normal(size=12)}}],
    ]


def test_four_threads_on_one_pipeline_give_the_sequential_results():
    for mode in ["eager", "compiled"]:
        pipe = Chronos2Pipeline.from_pretrained(MODELS / "tiny-random", mode=mode, threads=2)
        inputs = batches()
        sequential = [pipe.predict(x, prediction_length=12) for x in inputs]
        with ThreadPoolExecutor(max_workers=4) as pool:
            for _ in range(3):
                concurrent = list(pool.map(lambda x: pipe.predict(x, prediction_length=12), inputs))
                for seq, con in zip(sequential, concurrent):
                    for a, b in zip(seq, con):
                        np.testing.assert_array_equal(a, b, err_msg=f"{mode}: a concurrent call differs")


def test_the_gil_is_released_while_computing():
    """A Python thread keeps running while another one forecasts."""
    pipe = pipeline("builtin")
    series = np.cumsum(np.random.default_rng(0).normal(size=(8, 1, 256)), axis=2) + 100
    done = threading.Event()
    ticks = 0

    def forecast():
        pipe.predict(series, prediction_length=16)
        done.set()

    worker = threading.Thread(target=forecast)
    worker.start()
    while not done.is_set():
        ticks += 1
    worker.join()
    # Holding the GIL for the whole call would leave this thread a handful of switch
    # intervals at most; released, it spins freely for the whole forecast.
    assert ticks > 10_000, ticks
