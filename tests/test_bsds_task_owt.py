"""task=bsds and OWT-UCM: the config keys, the W-Net + CRF + OWT-UCM row, the canny-owt-ucm cache key,
the published rows and the W&B scalars. Fast unit tests; the end-to-end run is in test_pipeline.py."""

import dataclasses
import types
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import write_fake_bsds

from wnet.datasets.images import bsds_files, read_image
from wnet.inference import predict
from wnet.postprocess import contours, crf, hierarchy, owt, postprocess
from wnet.tasks import bsds
from wnet.tasks.build import build_wnet, stages
from wnet.tasks.errors import ConfigError
from wnet.tasks.validate import load_config


def test_owt_defaults_and_overrides():
    cfg = load_config(None, ["owt.alpha=0.5", "owt.radius=7", "owt.image_radius=3", "owt.size_prior=0"])
    assert (cfg.owt.alpha, cfg.owt.radius, cfg.owt.image_radius, cfg.owt.size_prior) == (0.5, 7, 3, 0.0)
    default = load_config()
    assert default.owt == contours.OWTParams(alpha=0.3, radius=10, image_radius=5, size_prior=400.0)
    assert default.bsds.ucms == ["merge", "owt"] and "canny-owt-ucm" in default.bsds.baselines


@pytest.mark.parametrize(
    "override, match",
    [
        ("owt.alpha=1.5", "owt.alpha"),
        ("owt.radius=0", "owt.radius"),
        ("owt.image_radius=-2", "owt.image_radius"),
        ("owt.size_prior=-1", "owt.size_prior"),
        ("owt.radius=2.5", "expected an integer"),
        ("bsds.baselines=[canny]", "canny-owt-ucm"),  # the valid names are listed
        ("owt.split_tol=0.2", "owt.split_tol"),  # not a key
    ],
)
def test_bad_owt_values_stop_at_load_time(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, [override])


def test_without_scikit_image_task_bsds_stops_at_load_time(tmp_path, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "skimage" else find_spec(n, *a)
    )
    bsds_task = ["task=bsds", "data.name=bsds500", f"data.root={tmp_path}"]
    with pytest.raises(ConfigError, match="scikit-image"):
        load_config(None, bsds_task)
    merge_only = [*bsds_task, "ucm=merge", "bsds.ucms=[merge]"]
    with pytest.raises(ConfigError, match="scikit-image"):
        load_config(None, merge_only)  # canny-owt-ucm is a default baseline
    load_config(None, [*merge_only, "bsds.baselines=[kmeans]"])
    segment = ["task=segment", f"checkpoint={__file__}", "segment.input=x", "segment.output=y"]
    with pytest.raises(ConfigError, match="scikit-image"):
        load_config(None, segment)  # its ucm2 is OWT-UCM by default
    load_config(None, [*segment, "ucm=merge"])
    load_config(None, [])  # other tasks never need it


def test_ucm_picks_the_pipeline_s_hierarchy(tmp_path):
    bsds_task = ["task=bsds", "data.name=bsds500", f"data.root={tmp_path}"]
    assert load_config().ucm == "owt"
    with pytest.raises(ConfigError, match="bsds.ucms"):  # the headline row would be missing
        load_config(None, [*bsds_task, "bsds.ucms=[merge]"])
    assert load_config(None, [*bsds_task, "ucm=merge", "bsds.ucms=[merge]"]).ucm == "merge"
    with pytest.raises(
        ConfigError, match="'bsds.ucms': .'merge', 'merge', 'owt'. is not allowed; expected no repeats"
    ):
        load_config(None, [*bsds_task, "bsds.ucms=[merge, merge, owt]"])
    with pytest.raises(ConfigError, match="'ucm': 'gpb' is not allowed"):
        load_config(None, ["ucm=gpb"])
    rng = np.random.default_rng(1)
    q = rng.dirichlet(np.ones(3), size=(12, 14)).transpose(2, 0, 1).astype(np.float32)  # (K, H, W)
    image = (rng.random((12, 14, 3)) * 255).astype(np.uint8)
    cfg = load_config(None, ["owt.radius=3", "hierarchy.min_region=4"])
    st = dataclasses.replace(stages(cfg), crf=crf.CRFParams(kind="none"))  # the maps as they are
    np.testing.assert_array_equal(
        postprocess(q, image, st, (cfg.ucm,)).ucm2["owt"], contours.wnet_owt_ucm2(q, image, cfg.owt)
    )
    merged = postprocess(q, image, st, ("merge",)).ucm2["merge"]
    np.testing.assert_array_equal(merged, hierarchy.to_ucm2(q, image, cfg.hierarchy))
    assert not np.array_equal(merged, contours.wnet_owt_ucm2(q, image, cfg.owt))  # two different hierarchies


@pytest.mark.parametrize("owt_row", [True, False])
def test_the_owt_row_is_the_ucm2_of_the_crf_maps(tmp_path, owt_row):
    row = "W-Net + CRF + OWT-UCM (soft-map contours)"
    write_fake_bsds(tmp_path / "B", n_train=1, n_test=1)
    files, _ = bsds_files(tmp_path / "B", "test")
    tiny = ["model.k=4", "model.base_width=4", "crf.kind=torch", "crf.radius=3", "train.amp=none"]
    cfg = load_config(
        None,
        [
            *tiny,
            "owt.radius=3",
            "owt.image_radius=2",
            "bsds.ucms=" + ("[merge, owt]" if owt_row else "[merge]"),
        ],
    )
    torch.manual_seed(0)
    model = build_wnet(cfg.model).eval()
    with torch.no_grad():
        methods = bsds._predict_files(cfg, model, files)
    assert (row in methods) is owt_row
    if owt_row:
        u = methods[row]["200"]
        assert u.shape == (81, 81) and u.dtype == np.float32 and 0 <= u.min() and u.max() <= 1
        assert (u[1::2, 1::2] == 0).all()
        img = read_image(files[0], 3)
        with torch.no_grad():
            p = predict(model, torch.from_numpy(img).permute(2, 0, 1)[None], "none", pad=39)[0][0].numpy()
        q = crf.refine(p, img, cfg.crf)  # the CRF-refined maps, as the task computes them
        np.testing.assert_array_equal(u, contours.wnet_owt_ucm2(q, img, cfg.owt).astype(np.float32))


def _fake_module(path, text):
    path.write_text(text)
    return types.SimpleNamespace(__file__=str(path))


def test_the_canny_owt_ucm_cache_key_covers_the_owt_source(tmp_path, monkeypatch):
    write_fake_bsds(tmp_path / "B", n_train=1, n_test=1)
    files, _ = bsds_files(tmp_path / "B", "test")
    cfg = load_config(None, [f"out_dir={tmp_path / 'runs'}"])
    before = {n: bsds.baseline_cache_dir(cfg, n, files) for n in ("canny-owt-ucm", "kmeans")}
    assert before["canny-owt-ucm"].name.startswith("canny-owt-ucm-")
    for name in ("owt", "contours", "ucm", "crf"):  # each of the modules the ucm2 depends on
        with monkeypatch.context() as m:
            m.setattr(bsds, name, _fake_module(tmp_path / f"{name}.py", f"# another {name}\n"))
            after = {n: bsds.baseline_cache_dir(cfg, n, files) for n in before}
        assert after["canny-owt-ucm"] != before["canny-owt-ucm"], name
        assert after["kmeans"] == before["kmeans"], name  # label-map baselines do not use them
    assert {n: bsds.baseline_cache_dir(cfg, n, files) for n in before} == before


def test_published_rows_are_labelled_and_blank_where_unknown(tmp_path):
    rows = {"W-Net + CRF + OWT-UCM": {c: 0.5 for c in bsds.COLUMNS}}
    md, cs = bsds.write_tables(tmp_path, rows, "meta")
    lines = md.read_text().splitlines()
    canny = next(line for line in lines if line.startswith("| Canny-owt-ucm"))
    assert "published" in canny and "not computed here" in canny and "Table 2" in canny
    cells = [c.strip() for c in canny.strip("|").split("|")[1:]]
    assert cells == ["0.490", "0.550", "0.790", "0.830", "2.190", "1.890", "", "", ""]  # no boundary figures
    assert any(line.startswith("| gPb-owt-ucm (published") for line in lines)
    text = cs.read_text().splitlines()
    assert "W-Net (paper),0.57,0.62,0.81,0.84,1.76,1.6,,,,published" in text
    assert text[-1] == "Human (paper),0.72,0.72,0.88,0.88,1.17,1.17,,,,published"


def test_the_new_rows_are_logged_as_wandb_scalars():
    rows = {
        "W-Net + CRF + hierarchy": {c: 0.5 for c in bsds.COLUMNS},
        bsds.PIPELINE_ROW["owt"]: {c: 0.6 for c in bsds.COLUMNS},
        "baseline: canny-owt-ucm": {c: 0.4 for c in bsds.COLUMNS},
    }
    logged = {}
    sink = SimpleNamespace(log=lambda v, step=None: logged.update(v), summary=lambda v: None)
    values = bsds.log_scores(SimpleNamespace(sink=sink), rows)
    assert values["bsds/w-net_plus_crf_plus_owt-ucm_soft-map_contours/pri_ods"] == 0.6
    assert values["bsds/baseline_canny-owt-ucm/sc_ods"] == 0.4
    assert values["bsds/pri_ods"] == 0.6  # the sweep metric: the default ucm=owt row's
    assert logged == values
    merge = bsds.log_scores(SimpleNamespace(sink=sink), rows, bsds.PIPELINE_ROW["merge"])
    assert merge["bsds/pri_ods"] == 0.5  # ucm=merge: the hierarchy row's


def test_owt_settings_reach_the_library_unchanged():
    """The config section is the library's own dataclass: nothing is translated in between."""
    cfg = load_config(None, ["owt.alpha=0.7", "owt.radius=4"])
    assert isinstance(cfg.owt, contours.OWTParams) and isinstance(cfg.crf, crf.CRFParams)
    rng = np.random.default_rng(0)
    q = rng.dirichlet(np.ones(3), size=(12, 14)).transpose(2, 0, 1).astype(np.float32)
    image = (rng.random((12, 14, 3)) * 255).astype(np.uint8)
    expected = owt.contours2ucm(contours.wnet_contours(q, image, 0.7, 4, 5), size_prior=400.0)
    np.testing.assert_array_equal(contours.wnet_owt_ucm2(q, image, cfg.owt), expected)
