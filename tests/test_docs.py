"""The docs cannot drift from the code or from the results files.

* Every ```python block of README.md and docs/*.md runs, in order, one namespace per file (a block
  may use the names of the blocks before it), doctest style: in a temporary working directory,
  after a small per-file setup (``SETUP``) that makes the tiny inputs the blocks name.
* Every fenced block says its language (```python, ```bash, ```text, ...), so no Python hides
  in an unmarked fence.
* Every ``<!-- reproduce:NAME[:VIEW] -->`` block equals its rendering from docs/results/
  (what ``experiments/reproduce.py --render`` writes), so a figure has one source.
"""

import re
import shutil
import textwrap

import cv2
import numpy as np
import pytest
import scipy.io
from helpers import ROOT, write_paired

from wnet.tasks import results as rt

DOCS = rt.rendered_files(ROOT)
FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)


def fences(path) -> list[tuple[int, str, str]]:
    """(line, language, code) of each fenced block of a markdown file."""
    text = path.read_text()
    return [(text[: m.start()].count("\n") + 1, m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def _image(h=24, w=32):
    """A tiny RGB image (H, W, 3) uint8: a bright square and a dark disc on a mid background."""
    img = np.full((h, w, 3), 120, np.uint8)
    img[4:14, 4:14] = (230, 200, 40)
    cv2.circle(img, (24, 16), 6, (20, 30, 160), -1)
    return img


def _soft_maps(image, k=4):
    """Soft maps (K, H, W) that follow the image's colours: a softmax of negative colour distances."""
    centres = np.array([[120, 120, 120], [230, 200, 40], [20, 30, 160], [0, 0, 0]], np.float32)[:k]
    d = ((image[None].astype(np.float32) - centres[:, None, None]) ** 2).sum(-1) / 2000.0
    e = np.exp(-(d - d.min(0)))
    return (e / e.sum(0)).astype(np.float32)


def _bsds_setup(tmp):
    """BSDS500/groundTruth/test/{2018,3063}.mat (two annotators each) and a prediction per image."""
    from wnet.postprocess.hierarchy import ucm2_from_labels

    gt_dir = tmp / "BSDS500" / "groundTruth" / "test"
    gt_dir.mkdir(parents=True)
    seg = np.ones((24, 32), np.uint16)
    seg[4:14, 4:14] = 2
    for stem in ("2018", "3063"):
        gt = np.empty((1, 2), dtype=object)
        for a, s in enumerate((seg, np.ones_like(seg))):
            bdry = np.zeros(s.shape, np.uint8)
            bdry[:-1] |= (s[:-1] != s[1:]).astype(np.uint8)
            bdry[:, :-1] |= (s[:, :-1] != s[:, 1:]).astype(np.uint8)
            gt[0, a] = {"Segmentation": s, "Boundaries": bdry}
        scipy.io.savemat(gt_dir / f"{stem}.mat", {"groundTruth": gt})
    labels = seg.astype(np.int64)
    return {
        "seg_2018": labels,
        "seg_3063": labels,
        "ucm2_2018": ucm2_from_labels(labels),
        "ucm2_3063": ucm2_from_labels(labels),
    }


def _labelled_setup(tmp):
    """path/CamVid (SegNet layout), path/isbi2012 (image/ label/, 0/255), path/voc (VOCdevkit)."""
    from PIL import Image

    write_paired(tmp / "path" / "CamVid", num_classes=3, n_train=4, n_val=2, size=32)
    isbi = tmp / "path" / "isbi2012"
    (isbi / "image").mkdir(parents=True)
    (isbi / "label").mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        cv2.imwrite(str(isbi / "image" / f"{i}.png"), rng.integers(0, 256, (16, 16), dtype=np.uint8))
        cv2.imwrite(str(isbi / "label" / f"{i}.png"), (rng.random((16, 16)) > 0.3).astype(np.uint8) * 255)
    voc = tmp / "path" / "voc" / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True)
    (voc / "ImageSets" / "Segmentation" / "train.txt").write_text("a\nb\n")
    for stem in ("a", "b"):
        cv2.imwrite(str(voc / "JPEGImages" / f"{stem}.jpg"), _image())
        mask = Image.fromarray(np.where(_image()[..., 0] > 200, 1, 0).astype(np.uint8), mode="P")
        mask.save(voc / "SegmentationClass" / f"{stem}.png")
    import torch

    return {"image": torch.rand(3, 40, 60), "mask": torch.randint(0, 11, (40, 60))}


def _comparison_setup(tmp):
    import torch

    from wnet.model import WNet

    torch.manual_seed(0)
    dataset = [{"image": torch.rand(3, 16, 16), "label": torch.randint(0, 12, (16, 16))} for _ in range(3)]
    return {
        "dataset": dataset,
        "predict_fn": lambda x: torch.zeros(x.shape[0], *x.shape[2:], dtype=torch.long),
        "model": WNet(k=4, base_width=4).eval(),
    }


def _metrics_setup(tmp):
    import torch

    torch.manual_seed(0)
    target = torch.randint(0, 12, (2, 8, 8))
    return {
        "pred": torch.randint(0, 11, (2, 8, 8)),
        "target": target,
        "loader": [{"image": torch.rand(2, 3, 8, 8), "label": target}],
        "model": torch.nn.Conv2d(3, 11, 1),
        "C": 3,
        "K": 4,
        "ignore": 255,
        "batches": [(torch.randint(0, 4, (2, 8, 8)), torch.randint(0, 3, (2, 8, 8))) for _ in range(2)],
    }


def _ncut_setup(tmp):
    import torch

    torch.manual_seed(0)
    return {"images_0_1": torch.rand(2, 3, 16, 16), "probs": torch.softmax(torch.randn(2, 4, 16, 16), 1)}


def _postprocessing_setup(tmp):
    image = _image()
    return {"image": image, "probs": _soft_maps(image), "edges": np.random.default_rng(0).random((24, 32))}


def _gpb_setup(tmp):
    """A 24x32 image of two halves: gPb on it takes about a second."""
    image = np.zeros((24, 32, 3), np.uint8)
    image[:, 16:] = (200, 120, 40)
    return {"image": image}


def _segment_setup(tmp):
    """photo.jpg: the shipped model segments it (CRF and OWT-UCM on 24x32 px take well under a second)."""
    cv2.imwrite(str(tmp / "photo.jpg"), _image()[..., ::-1])
    return {}


# file -> setup(tmp_path) returning the names its blocks use (tiny inputs; files written under tmp_path)
SETUP = {
    "bsds.md": _bsds_setup,
    "comparison.md": _comparison_setup,
    "gpb.md": _gpb_setup,
    "labelled_data.md": _labelled_setup,
    "metrics.md": _metrics_setup,
    "ncut.md": _ncut_setup,
    "postprocessing.md": _postprocessing_setup,
    "segment.md": _segment_setup,
}
# environment per file: the losses page's cost script times every loss at this shape, not 4x11x128x128
ENVIRON = {"losses.md": {"BENCH_SHAPE": "1,3,16,16"}}
WITH_PYTHON = [p for p in DOCS if any(lang == "python" for _, lang, _ in fences(p))]


def test_the_api_pages_have_python_blocks():
    """The pages that document an API show it in Python, so the test below cannot pass vacuously."""
    names = {p.name for p in WITH_PYTHON}
    assert {"postprocessing.md", "comparison.md", "losses.md", "metrics.md", "ncut.md", "bsds.md"} <= names
    assert set(SETUP) <= names  # no setup for a page that has lost its blocks


@pytest.mark.parametrize("path", WITH_PYTHON, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_block_runs(path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for key, value in ENVIRON.get(path.name, {}).items():
        monkeypatch.setenv(key, value)
    namespace = {"__name__": f"docs_{path.stem}"}
    namespace |= SETUP[path.name](tmp_path) if path.name in SETUP else {}
    for line, lang, code in fences(path):
        if lang != "python":
            continue
        try:
            exec(compile(textwrap.dedent(code), f"{path.relative_to(ROOT)}:{line}", "exec"), namespace)
        except Exception as e:
            pytest.fail(f"{path.relative_to(ROOT)}, the python block at line {line}: {type(e).__name__}: {e}")


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_fence_names_its_language(path):
    unnamed = [line for line, lang, _ in fences(path) if not lang]
    assert not unnamed, f"{path.relative_to(ROOT)}: fences without a language at lines {unnamed}"


def test_rendered_blocks_equal_the_results_files(tmp_path):
    """What ``reproduce.py --render`` would write is what is committed, in the README and in docs/."""
    copy = tmp_path / "checkout"
    (copy / "docs").mkdir(parents=True)
    for path in DOCS:
        shutil.copy(path, copy / path.relative_to(ROOT))
    rt.render_docs(copy, rt.RESULTS)
    stale = [
        str(p.relative_to(ROOT)) for p in DOCS if (copy / p.relative_to(ROOT)).read_text() != p.read_text()
    ]
    assert not stale, (
        f"run `python experiments/reproduce.py --render`: these differ from docs/results/: {stale}"
    )


def test_every_results_file_is_rendered_in_the_docs():
    """Each job's results appear in full in docs/results.md (tables) or docs/performance.md (benchmarks)."""
    blocks = {
        page: set(m.group(1) for m in rt.BLOCK.finditer((ROOT / "docs" / page).read_text()) if not m.group(2))
        for page in ("results.md", "performance.md")
    }
    jobs = {p.name.removesuffix(".meta.json") for p in rt.RESULTS.glob("*.meta.json")}
    assert {j for j in jobs if not j.startswith("bench_")} <= blocks["results.md"]
    assert {j for j in jobs if j.startswith("bench_")} <= blocks["performance.md"]


def test_a_stale_block_is_found(tmp_path):
    """The check above can fail: a hand edit of a rendered figure differs from the rendering."""
    page = tmp_path / "page.md"
    block = (
        f"<!-- reproduce:bench_ddp -->\n{rt.render('bench_ddp', rt.RESULTS)}\n<!-- /reproduce:bench_ddp -->\n"
    )
    page.write_text(block.replace("1.41×", "1.81×"))
    rt.render_markdown(page, rt.RESULTS)
    assert page.read_text() == block


def test_readme_is_a_front_page():
    """Issue 31: at most 220 lines, the picture and both commands on its first screen, no commit
    hash outside the results captions."""
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 220
    first = "\n".join(lines[:45])
    assert "![" in first and "experiments/run.py" in first and "-m pytest" in first
    captions = [line for line in lines if line.startswith(("Regenerated ", "Held-out soft N-Cut"))]
    hashes = [line for line in lines if re.search(r"\b[0-9a-f]{7}\b", line) and line not in captions]
    assert not hashes, hashes
    picture = re.search(r"!\[[^]]*\]\(([^)]+)\)", first).group(1)
    assert (ROOT / picture).is_file(), picture


def _anchors(path) -> set[str]:
    """GitHub's anchors of a markdown file's headings: lower case, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    heads = re.findall(r"^#+ (.+)$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    """Links between the pages (after the README moved into docs/) point at files and headings that exist."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in _anchors(dest)):
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)}: broken links {broken}"
