"""wnet.postprocess.gpb.cache: gPb of an image computed once, whatever the number of callers."""

import multiprocessing
import time
from types import SimpleNamespace

import numpy as np
import pytest

from wnet.postprocess.gpb import GPbParams, gpb
from wnet.postprocess.gpb import cache as gcache


def _image(seed=0):
    image = np.zeros((16, 20, 3), np.uint8)
    image[:, 10:] = (200, 100, 50)
    image[0, 0, 0] = seed
    return image


def test_the_cache_returns_what_gpb_computes_and_reads_it_back(tmp_path, monkeypatch):
    image = _image()
    first = gcache.cached_gpb(image, None, tmp_path)
    np.testing.assert_array_equal(first, gpb(image).orient.astype(np.float32))
    assert len(list(tmp_path.glob("gpb-*.npy"))) == 1
    monkeypatch.setattr(gcache, "gpb", lambda *a: pytest.fail("computed again"))
    np.testing.assert_array_equal(gcache.cached_gpb(image / 255.0, None, tmp_path), first)  # same pixels


def test_the_key_covers_the_pixels_and_the_settings():
    keys = {
        gcache.gpb_key(_image(0), GPbParams()),
        gcache.gpb_key(_image(1), GPbParams()),
        gcache.gpb_key(_image(0), GPbParams(eig_iters=5)),
    }
    assert len(keys) == 3


def _slow_fake_gpb(log):
    def fake(rgb, params):
        with open(log, "a") as f:
            f.write("computed\n")
        time.sleep(0.5)
        return SimpleNamespace(orient=np.full((*rgb.shape[:2], 8), 0.25))

    return fake


def _worker(folder, log, queue):
    gcache.gpb = _slow_fake_gpb(log)  # the forked child's own module
    queue.put(float(gcache.cached_gpb(_image(), None, folder).sum()))


def test_processes_asking_at_once_compute_the_image_once(tmp_path):
    ctx = multiprocessing.get_context("fork")
    queue, log = ctx.Queue(), tmp_path / "log.txt"
    procs = [ctx.Process(target=_worker, args=(tmp_path / "cache", log, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    sums = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert log.read_text().splitlines() == ["computed"]  # one computation, the others waited and read it
    assert sums == [16 * 20 * 8 * 0.25] * 3
