"""``task=segment`` and tiled prediction: outputs for every kind of image, the official ucm2 format
scored by ``python -m wnet.bsds``, tiles that agree with the whole image, reruns that skip what is
done, bad inputs refused with one line, and torchrun's split of the images."""

import csv
import json
import os
import stat
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from helpers import ENV, ROOT, RUN, TINY, write_fake_bsds

from wnet.bsds.io import load_prediction
from wnet.bsds.levels import thresholds, ucm2_to_segmentations
from wnet.datasets.procedural import make_image
from wnet.inference import axis_tiles, blend_window, min_tile_pixels, predict, predict_tiled, tile_grid
from wnet.tasks.cli import run
from wnet.tasks.config import Config
from wnet.tasks.errors import CheckpointError, ConfigError
from wnet.tasks.keys import config_to_dict
from wnet.tasks.segment_files import ucm2_picture
from wnet.tasks.validate import SEGMENT_OUTPUTS, load_config

K = 4  # the tiny model's classes (helpers.TINY)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny W-Net (K = 4, width 4) trained for 2 steps on the procedural data."""
    out = tmp_path_factory.mktemp("model")
    run([*TINY, "train.iterations=2", "train.threads=1", f"out_dir={out}", "name=w"])
    return out / "w" / "last.pt"


def _picture(i: int, h: int, w: int) -> np.ndarray:
    rgb, _ = make_image(i, max(h, w), seed=3)
    return np.ascontiguousarray(rgb[:h, :w, ::-1])  # BGR uint8 (h, w, 3)


@pytest.fixture
def images(tmp_path):
    """Grey, RGBA, 16-bit colour, 16-bit grey and odd-sized JPEG images, some in sub-folders;
    ``{relative stem: (h, w)}``."""
    root = tmp_path / "in"
    (root / "sub" / "deeper").mkdir(parents=True)
    grey = cv2.cvtColor(_picture(0, 30, 41), cv2.COLOR_BGR2GRAY)
    rgba = np.dstack([_picture(1, 33, 27), np.full((33, 27), 200, np.uint8)])
    deep = _picture(2, 29, 35).astype(np.uint16) * 257
    for path, img in [
        ("grey.png", grey),
        ("rgba.png", rgba),
        ("sub/deep.png", deep),
        ("sub/deeper/grey16.png", grey.astype(np.uint16) * 257),
        ("sub/odd.jpg", _picture(3, 37, 53)),
    ]:
        assert cv2.imwrite(str(root / path), img)
    sizes = {"grey": (30, 41), "rgba": (33, 27), "sub/deep": (29, 35), "sub/deeper/grey16": (30, 41)}
    return root, {**sizes, "sub/odd": (37, 53)}


def _segment(ckpt, src, out, *extra):
    return run(
        [
            "task=segment", f"checkpoint={ckpt}", f"segment.input={src}", f"segment.output={out}",
            "crf.workers=1", "train.threads=1", "wandb.mode=disabled", *extra,
        ]
    )  # fmt: skip


def _index(out) -> dict[str, dict]:
    with open(out / "index.csv", newline="") as f:
        return {r["image"].rsplit(".", 1)[0]: r for r in csv.DictReader(f)}


def _nested(fine: np.ndarray, coarse: np.ndarray) -> bool:
    """Every region of ``fine`` lies inside one region of ``coarse``."""
    pairs = np.unique(np.stack([fine.ravel(), coarse.ravel()]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1]


def test_every_output_of_every_kind_of_image(ckpt, images, tmp_path):
    src, sizes = images
    out = tmp_path / "out"
    _segment(ckpt, src, out, f"segment.outputs=[{','.join(SEGMENT_OUTPUTS)}]")
    index = _index(out)
    assert set(index) == set(sizes) and {r["status"] for r in index.values()} == {"done"}
    for stem, (h, w) in sizes.items():
        for folder, suffix in [
            ("labels", ".png"),
            ("crf", ".png"),
            ("overlay", ".png"),
            ("ucm2", ".png"),
        ]:
            assert (out / folder / f"{stem}{suffix}").is_file(), (folder, stem)
            assert f"{folder}/{stem}{suffix}" in index[stem]["outputs"].split()
        for folder in ("labels", "crf"):
            labels = cv2.imread(str(out / folder / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
            assert labels.shape == (h, w) and labels.dtype == np.uint8 and labels.max() < K
        probs = np.load(out / "probs" / f"{stem}.npz")["probs"]
        assert probs.shape == (K, h, w) and probs.dtype == np.float16
        np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1.0, atol=5e-3)
        labels = cv2.imread(str(out / "labels" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        assert (probs.argmax(0) == labels).mean() > 0.99  # float16 ties aside, the argmax of the saved maps
        pred = load_prediction(out / "ucm2" / f"{stem}.mat")  # what python -m wnet.bsds reads
        assert pred.kind == "ucm2" and pred.image_shape() == (h, w)
        assert 0 <= pred.data.min() and pred.data.max() <= 1
        segs = ucm2_to_segmentations(pred.data, thresholds(9))  # finest first
        assert all(_nested(a, b) for a, b in zip(segs, segs[1:], strict=False))
        assert [len(np.unique(s)) for s in segs] == sorted((len(np.unique(s)) for s in segs), reverse=True)
        assert index[stem]["height"] == str(h) and index[stem]["tiles"] == "1"
        assert float(index[stem]["seconds_model"]) > 0 and float(index[stem]["seconds_hierarchy"]) > 0
    assert not (out / "failures.txt").exists() and not (out / ".tmp").exists()


@pytest.mark.parametrize("full", [False, True])
def test_above_post_max_pixels_the_post_processing_runs_on_a_working_grid(ckpt, images, tmp_path, full):
    """37 x 53 px with post_max_pixels=1024: factor 2, a 19 x 27 grid; labels stay at full size."""
    src, sizes = images
    out = tmp_path / "out"
    _segment(ckpt, src / "sub" / "odd.jpg", out, "segment.post_max_pixels=1024", f"segment.full_ucm2={full}",
             "segment.outputs=[labels,crf,ucm2,overlay,probs]", "crf.kind=torch", "crf.radius=3")  # fmt: skip
    row = _index(out)["odd"]
    assert row["scale"] == "2"
    for folder in ("labels", "crf"):
        assert cv2.imread(str(out / folder / "odd.png"), cv2.IMREAD_UNCHANGED).shape == (37, 53)
    assert np.load(out / "probs" / "odd.npz")["probs"].shape == (K, 19, 27)
    ucm2 = load_prediction(out / "ucm2" / "odd.mat").data
    assert ucm2.shape == ((2 * 37 + 1, 2 * 53 + 1) if full else (2 * 19 + 1, 2 * 27 + 1))
    assert cv2.imread(str(out / "ucm2" / "odd.png"), cv2.IMREAD_UNCHANGED).shape == (19, 27)


def test_a_rerun_skips_the_images_already_done(ckpt, images, tmp_path):
    src, sizes = images
    out = tmp_path / "out"
    first = _segment(ckpt, src, out, "segment.outputs=[labels,ucm2]", "crf.kind=none")
    assert first["processed"] == len(sizes)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.suffix in (".png", ".mat")}
    again = _segment(ckpt, src, out, "segment.outputs=[labels,ucm2]", "crf.kind=none")
    assert again == {"output": str(out), "done_before": len(sizes), "processed": 0}
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing rewritten
    index = _index(out)
    assert {r["status"] for r in index.values()} == {"skipped"}
    assert float(index["grey"]["seconds_model"]) > 0  # the row of the run that made it is kept
    (out / "ucm2" / "sub" / "odd.mat").unlink()  # as if that image had been interrupted
    third = _segment(ckpt, src, out, "segment.outputs=[labels,ucm2]", "crf.kind=none")
    assert third["processed"] == 1 and (out / "ucm2" / "sub" / "odd.mat").is_file()
    assert _index(out)["sub/odd"]["status"] == "done"


def test_python_m_wnet_bsds_scores_the_ucm2_folder_as_it_is(ckpt, tmp_path):
    root = tmp_path / "BSDS500"
    write_fake_bsds(root, n_test=2)
    out = tmp_path / "out"
    _segment(ckpt, root / "images" / "test", out, "crf.kind=torch", "crf.radius=3", "hierarchy.min_region=4")
    r = subprocess.run(
        [sys.executable, "-m", "wnet.bsds", str(out / "ucm2"), str(root / "groundTruth" / "test")]
        + ["--nthresh", "5", "--workers", "1", "--out", str(tmp_path / "bench")],
        capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads(r.stdout[r.stdout.index("{") :])
    assert summary["n_images"] == 2 and summary["n_levels"] == 5
    assert 0 < summary["pri_ods"] <= 1 and 0 < summary["sc_ods"] <= 1 and 0 <= summary["bdry_ods_f"] <= 1
    assert (tmp_path / "bench" / "eval_bdry_thr.txt").is_file()


# ----------------------------------------------------------------------------- tiling
@pytest.mark.parametrize("length", [100, 333, 700, 1000, 4000])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 20])
def test_axis_tiles_cover_align_and_overlap(length, n):
    tiles = axis_tiles(length, n, overlap=64)
    assert 1 <= len(tiles) <= n and tiles[0][0] == 0 and tiles[-1][1] == length
    assert all(a % 16 == 0 for a, _ in tiles)  # the whole image's pooling grid
    assert all(b0 <= a1 - 64 for (_, a1), (b0, _) in zip(tiles, tiles[1:], strict=False))


def test_tile_grid_bounds_a_tile_and_refuses_too_small_a_budget():
    ys, xs = tile_grid(700, 1000, pad=64, max_pixels=400_000, overlap=64)
    assert ys == [(0, 384), (320, 700)] and xs == [(0, 544), (464, 1000)]  # (384 + 128) x (544 + 128) px
    budget = min_tile_pixels(64, 64)
    ys, xs = tile_grid(900, 1300, 64, budget, 64)
    assert max((b - a + 128) * (d - c + 128) for a, b in ys for c, d in xs) <= budget
    with pytest.raises(ValueError, match="max_pixels=40000 is too small"):
        tile_grid(900, 1300, 64, 40_000, 64)


def test_blend_windows_of_overlapping_tiles_ramp_from_zero():
    w = blend_window(10, 4, 0)
    np.testing.assert_allclose(w.numpy(), [0.125, 0.375, 0.625, 0.875, 1, 1, 1, 1, 1, 1])
    assert torch.equal(blend_window(6, 0, 0), torch.ones(6))
    assert blend_window(10, 4, 4)[-1] == pytest.approx(0.125)


def test_four_tiles_agree_with_the_whole_image():
    """1000 x 700 px with max_pixels forcing 2 x 2 tiles: the argmax agrees on >= 99.5 % of pixels.

    The model is a tiny untrained W-Net, the first seed whose argmax takes at least two classes on
    this image (otherwise agreement would be trivial); quadrants run without context and without
    blending agree less, so the check can fail."""
    from wnet.model import WNet

    rgb, _ = make_image(3, 100, seed=1)
    img = cv2.resize(rgb, (1000, 700), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    x = torch.from_numpy(img).permute(2, 0, 1)[None]  # (1, 3, 700, 1000)
    small = torch.nn.functional.interpolate(x, size=(70, 100), mode="area")
    for seed in range(20):
        torch.manual_seed(seed)
        model = WNet(k=K, in_channels=3, base_width=4).eval()
        if np.sort(np.bincount(predict(model, small)[0].argmax(1).ravel(), minlength=K))[-2] > 0.1 * 7000:
            break
    whole = predict(model, x, pad=64)[0].argmax(1)
    assert np.bincount(whole.ravel(), minlength=K).max() < 0.95 * 700_000  # two classes at least
    ys, xs = tile_grid(700, 1000, 64, 400_000, 64)
    assert len(ys) * len(xs) == 4
    tiled = predict_tiled(model, x, pad=64, max_pixels=400_000, overlap=64)[0].argmax(1)
    agreement = (tiled == whole).float().mean().item()
    naive = torch.zeros_like(whole)
    for y in (0, 350):
        for x0 in (0, 500):
            naive[..., y : y + 350, x0 : x0 + 500] = predict(model, x[..., y : y + 350, x0 : x0 + 500])[
                0
            ].argmax(1)
    assert agreement >= 0.995 and agreement > (naive == whole).float().mean().item()


def test_outputs_keep_the_user_s_umask(ckpt, images, tmp_path):
    """Temporary files are made with mode 0600; the renamed outputs must get what the umask gives."""
    src, _ = images
    out = tmp_path / "out"
    cmd = [*RUN, "task=segment", f"checkpoint={ckpt}", f"segment.input={src}", f"segment.output={out}",
           "train.threads=1", "segment.outputs=[labels,ucm2]", "crf.kind=none", "ucm=merge"]  # fmt: skip
    r = subprocess.run(
        cmd, capture_output=True, text=True, env=ENV, timeout=300, preexec_fn=lambda: os.umask(0o027)
    )
    assert r.returncode == 0, r.stderr[-2000:]
    modes = {str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*") if p.is_file()}
    assert {"index.csv", "segment.yaml", "labels/grey.png", "ucm2/sub/odd.mat"} <= set(modes)
    assert set(modes.values()) == {0o640}, modes


# ----------------------------------------------------------------------------- config and bad inputs
def test_segment_config_is_checked_at_load(tmp_path):
    ok = ["task=segment", f"checkpoint={__file__}", "segment.input=a", "segment.output=b"]
    cfg = load_config(ROOT / "experiments" / "configs" / "bsds500_cpu.yaml", ok)  # data.root not needed
    assert cfg.segment.outputs == ["labels", "crf", "ucm2", "overlay"]
    for bad, message in [
        (["segment.outputs=[labels,edges]"], "segment.outputs[1]"),
        (["segment.outputs=[]"], "'segment.outputs'"),
        (["segment.outputs=[crf]", "crf.kind=none"], "no 'crf' while crf.kind is none"),
        (["segment.max_pixels=1000"], "'segment.max_pixels'"),
        (["segment.input="], "'segment.input'"),
        (["segment.post_max_pixels=100"], "'segment.post_max_pixels'"),
    ]:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
            load_config(None, [*ok, *bad])


def _no_wnet(t):
    path = t / "unet.pt"
    torch.save({"models": {"unet": {}}, "config": config_to_dict(Config()), "step": 0}, path)
    return [f"checkpoint={path}"], "holds no W-Net", str(path)


def _unreadable(t):
    (t / "in" / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return [], "1 of 2 images could not be read; the list is in", "failures.txt"


def _unwritable(t):
    (t / "file").write_text("not a folder")
    return [f"--segment.output={t / 'file' / 'out'}"], "segment.output: cannot write to", "file/out"


@pytest.mark.parametrize(  # _unreadable (a failure mid-run) stays in the default suite; all three under -m slow
    "case",
    [
        pytest.param(_no_wnet, marks=pytest.mark.slow),
        _unreadable,
        pytest.param(_unwritable, marks=pytest.mark.slow),
    ],
)
def test_bad_input_is_one_line_with_exit_code_3(ckpt, tmp_path, case):
    (tmp_path / "in").mkdir()
    assert cv2.imwrite(str(tmp_path / "in" / "good.png"), _picture(0, 20, 24))
    extra, message, named = case(tmp_path)
    args = [
        f"--checkpoint={ckpt}",
        f"--segment.input={tmp_path / 'in'}",
        f"--segment.output={tmp_path / 'out'}",
    ]
    cmd = [*RUN, "task=segment", "train.threads=1", "segment.outputs=[labels]", *args, *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=300)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert r.returncode == 3 and len(errors) == 1, r.stderr[-2000:]
    assert message in errors[0] and named in errors[0] and "Traceback" not in r.stderr
    if case is _unreadable:  # skipped with a warning; the good image is done
        assert "warning: cannot read image" in r.stderr and "bad.jpg" in r.stderr
        assert (tmp_path / "out" / "labels" / "good.png").is_file()
        assert (tmp_path / "out" / "failures.txt").read_text().startswith("bad.jpg: cannot read image")
        assert _index(tmp_path / "out")["bad"]["status"] == "failed"
    else:  # refused before any work
        assert not (tmp_path / "out" / "labels").exists()


@pytest.mark.slow  # two torchrun workers and a reference process: about a minute on a busy 2-core machine
def test_torchrun_splits_the_images_and_writes_what_one_process_writes(ckpt, images, tmp_path):
    src, sizes = images
    args = [f"checkpoint={ckpt}", f"segment.input={src}", "segment.outputs=[labels,ucm2]"]
    args += ["crf.kind=torch", "crf.radius=3", "train.threads=1"]
    one = subprocess.run(
        [*RUN, "task=segment", *args, f"segment.output={tmp_path / 'one'}"],
        env=ENV,
        capture_output=True,
        text=True,
    )
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    two = subprocess.run(
        [*torchrun, *RUN[1:], "task=segment", *args, f"segment.output={tmp_path / 'two'}"],
        env=ENV, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-3000:]
    files = sorted(
        p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.suffix in (".png", ".mat")
    )
    assert len(files) == 3 * len(sizes)  # labels, ucm2 .mat and its picture
    for f in files:
        if f.suffix == ".png":
            a, b = (cv2.imread(str(tmp_path / d / f), cv2.IMREAD_UNCHANGED) for d in ("one", "two"))
            assert np.array_equal(a, b), f
        else:
            a, b = (load_prediction(tmp_path / d / f).data for d in ("one", "two"))
            np.testing.assert_allclose(a, b, atol=1e-6)
    rows = [
        {k: v for k, v in r.items() if not k.startswith("seconds")} for r in _index(tmp_path / "two").values()
    ]
    assert rows == [
        {k: v for k, v in r.items() if not k.startswith("seconds")} for r in _index(tmp_path / "one").values()
    ]


def test_ucm2_picture_shows_each_pixel_s_cracks():
    ucm2 = np.zeros((5, 7))  # a 2 x 3 image
    ucm2[1, 4] = 0.5  # between pixels (0, 1) and (0, 2)
    ucm2[2, 1] = 1.0  # between pixels (0, 0) and (1, 0)
    np.testing.assert_array_equal(ucm2_picture(ucm2), [[255, 128, 0], [0, 0, 0]])


# ----------------------------------------------------------------------------- file names, truncation, contradictions
def test_a_truncated_jpeg_fails_and_a_name_that_is_not_utf8_is_segmented(ckpt, tmp_path):
    """A JPEG cut to its first 5000 bytes is skipped and listed (exit 3); an image named in Latin-1
    (OpenCV's imread crashed on it, signal 11) is segmented, its name escaped in the listings."""
    src = tmp_path / "in"
    src.mkdir()
    assert cv2.imwrite(str(src / "good.png"), _picture(0, 20, 24))
    ok, jpeg = cv2.imencode(".jpg", _picture(1, 128, 128), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok and jpeg.size > 8000
    (src / os.fsdecode(b"cut\xff.jpg")).write_bytes(jpeg.tobytes()[:5000])  # not UTF-8 either
    ok, png = cv2.imencode(".png", _picture(2, 22, 26))
    (src / os.fsdecode(b"caf\xe9.png")).write_bytes(png.tobytes())
    out = tmp_path / "out"
    cmd = [*RUN, "task=segment", f"checkpoint={ckpt}", f"segment.input={src}", f"segment.output={out}"]
    r = subprocess.run([*cmd, "segment.outputs=[labels]", "train.threads=1"], capture_output=True, env=ENV)
    err = r.stderr.decode("utf-8", "replace")
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert r.returncode == 3 and len(errors) == 1 and "Traceback" not in err, err[-2000:]
    assert "1 of 3 images could not be read; the list is in" in errors[0]
    listing = (out / "failures.txt").read_text(encoding="utf-8")  # escaped: it is valid UTF-8
    assert (
        listing
        == f"cut\\xff.jpg: cannot read image {src}/cut\\xff.jpg: it is truncated (no JPEG end-of-image marker (FF D9))\n"
    )
    assert "warning: cannot read image" in err and "cut\\xff.jpg" in err
    index = _index(out)
    assert {k: v["status"] for k, v in index.items()} == {
        "caf\\xe9": "done",
        "cut\\xff": "failed",
        "good": "done",
    }
    labels = cv2.imdecode(np.fromfile(out / "labels" / os.fsdecode(b"caf\xe9.png"), np.uint8), -1)
    assert labels.shape == (22, 26) and labels.max() < K


def test_model_overrides_that_contradict_the_checkpoint_are_refused(ckpt, tmp_path):
    """The checkpoint's model is what runs; a contrary model.k would only have been recorded."""
    (tmp_path / "in").mkdir()
    assert cv2.imwrite(str(tmp_path / "in" / "a.png"), _picture(0, 20, 24))
    with pytest.raises(CheckpointError, match=f"checkpoint has model.k={K}, this run sets model.k=5"):
        _segment(ckpt, tmp_path / "in", tmp_path / "out", "model.k=5", "segment.outputs=[labels]")
    assert not (tmp_path / "out" / "labels").exists()
    _segment(ckpt, tmp_path / "in", tmp_path / "ok", f"model.k={K}", "segment.outputs=[labels]")
    assert f"k: {K}\n" in (tmp_path / "ok" / "segment.yaml").read_text()  # the K that ran
    _segment(ckpt, tmp_path / "in", tmp_path / "default", "segment.outputs=[labels]")  # no model.*: fine
    saved = (tmp_path / "default" / "segment.yaml").read_text()
    assert f"k: {K}\n" in saved and "base_width: 4\n" in saved  # the checkpoint's, not the defaults 8, 8


@pytest.mark.parametrize("where", ["in/out", "in", "in/sub/deeper/out"])
def test_an_output_folder_inside_the_input_is_refused(tmp_path, where):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    args = ["task=segment", f"checkpoint={__file__}", f"segment.input={tmp_path / 'in'}"]
    with pytest.raises(ConfigError, match="'segment.output'.*outside segment.input"):
        load_config(None, [*args, f"segment.output={tmp_path / where}"])
    with pytest.raises(ConfigError, match="'segment.output'.*outside segment.input"):  # a glob's folder
        load_config(
            None,
            [
                *args[:2],
                f"segment.input={tmp_path / 'in' / '**' / '*.png'}",
                f"segment.output={tmp_path / where}",
            ],
        )
    assert load_config(None, [*args, f"segment.output={tmp_path / 'out'}"]).segment.output == str(
        tmp_path / "out"
    )


def test_label_files_are_uint16_above_256_classes(tmp_path):
    """K = 300 (under the maximum, 1024): labels take uint16, and keep values above 255."""
    from wnet.model import WNet

    torch.manual_seed(0)
    model = WNet(k=300, in_channels=3, base_width=2)
    with torch.no_grad():  # class 299 wins everywhere: a label no uint8 file could hold
        model.u_enc.head.bias.fill_(0.0)
        model.u_enc.head.bias[299] = 100.0
    cfg = Config()
    cfg.model.k, cfg.model.base_width = 300, 2
    torch.save(
        {"models": {"wnet": model.state_dict()}, "config": config_to_dict(cfg), "step": 1},
        tmp_path / "k300.pt",
    )
    (tmp_path / "in").mkdir()
    assert cv2.imwrite(str(tmp_path / "in" / "a.png"), _picture(0, 20, 24))
    _segment(
        tmp_path / "k300.pt", tmp_path / "in", tmp_path / "out", "segment.outputs=[labels]", "crf.kind=none"
    )
    labels = cv2.imread(str(tmp_path / "out" / "labels" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert labels.dtype == np.uint16 and labels.shape == (20, 24) and (labels == 299).all()
