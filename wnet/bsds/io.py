"""Reading BSDS500 ground truth and predictions from disk, with loud errors.

Ground truth is the official ``.mat`` format: key ``groundTruth``, a 1xN cell whose entries have
``Segmentation`` (labels from 1) and ``Boundaries`` (0/1). Predictions are one file per image:

* ``.mat`` with ``ucm2`` (a contour map on the doubled grid, (2h+1)x(2w+1), values in [0, 1])
  or ``segs`` (a cell of label maps, one per level of a hierarchy);
* ``.png``: a label map (8- or 16-bit) by default, or a soft boundary map (``png_kind="boundary"``,
  the official benchmark's reading: ``double(imread(f)) / 255``);
* ``.npy``: an array, read as :func:`wnet.bsds.levels.as_prediction` describes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

from wnet.bsds.levels import Prediction, PredictionError, as_prediction
from wnet.datasets.images import decode_file, shown

PRED_SUFFIXES = (".mat", ".png", ".npy")


def _field(entry: np.ndarray, name: str, path: Path, i: int) -> np.ndarray:
    """One field of a MATLAB struct read by ``scipy.io.loadmat`` (unwrapping its 1x1 cell)."""
    if entry.dtype.names is None or name not in entry.dtype.names:
        have = entry.dtype.names or ()
        raise ValueError(
            f"{shown(path)}: groundTruth{{{i + 1}}} has no field {name!r} (fields: {list(have)})"
        )
    value = entry[name]
    while value.dtype == object or value.ndim > 2 or (value.ndim == 2 and value.shape == (1, 1)):
        value = value.reshape(-1)[0]
        if not isinstance(value, np.ndarray):
            break
    return np.asarray(value)


# what a bad file raises inside scipy.io.loadmat and numpy (garbage, truncated, HDF5 v7.3, strings)
READ_ERRORS = (ValueError, TypeError, OSError, NotImplementedError, IndexError, KeyError, MatReadError)


def _named(path: Path, e: Exception) -> PredictionError:
    """``e`` as a :class:`PredictionError` whose message names the file (once)."""
    if isinstance(e, PredictionError) and shown(path) in str(e):
        return e
    text = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
    if shown(path) in text:
        return PredictionError(text)
    return PredictionError(f"{shown(path)}: cannot be read ({type(e).__name__}: {text})")


def _loadmat(path: Path) -> dict:
    try:
        return scipy.io.loadmat(str(path))
    except READ_ERRORS as e:
        raise PredictionError(
            f"{shown(path)}: not a MATLAB .mat file this benchmark can read (a v7.3/HDF5 file, truncated, "
            f"or not a .mat at all; {type(e).__name__}: {str(e)[:120]})"
        ) from e


def load_ground_truth(path: str | Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Read the human annotations of one image.

    Args:
        path: official ground-truth ``.mat`` file.

    Returns:
        One ``(segmentation, boundaries)`` pair per annotator: an int64 label map (labels from 1)
        and a bool boundary map.

    Shape:
        each (H, W).

    Raises:
        FileNotFoundError if the file is missing; :class:`~wnet.bsds.levels.PredictionError` (a
        ValueError naming the file) if it is not a readable .mat, the key ``groundTruth`` is absent,
        the cell is empty, or the annotators' maps differ in size.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ground truth file {shown(path)} does not exist")
    try:
        return _ground_truth(path)
    except READ_ERRORS as e:
        raise _named(path, e) from e


def _ground_truth(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    m = _loadmat(path)
    if "groundTruth" not in m:
        keys = [k for k in m if not k.startswith("__")]
        raise ValueError(
            f"{shown(path)}: no key 'groundTruth' (keys: {keys}); expected the official BSDS500 format"
        )
    cell = np.asarray(m["groundTruth"]).reshape(-1)
    if cell.size == 0:
        raise ValueError(f"{shown(path)}: 'groundTruth' is an empty cell (no annotators)")
    out = []
    for i, entry in enumerate(cell):
        seg = _field(entry, "Segmentation", path, i).astype(np.int64)
        bdry = _field(entry, "Boundaries", path, i) != 0
        if seg.ndim != 2 or seg.shape != bdry.shape:
            raise ValueError(
                f"{shown(path)}: groundTruth{{{i + 1}}} Segmentation {seg.shape} and Boundaries {bdry.shape} "
                "must be the same 2-D size"
            )
        if out and seg.shape != out[0][0].shape:
            raise ValueError(
                f"{shown(path)}: annotator {i + 1} is {seg.shape}, annotator 1 is {out[0][0].shape}"
            )
        out.append((seg, bdry))
    return out


def load_prediction(path: str | Path, png_kind: str = "labels") -> Prediction:
    """Read one prediction file (see the module docstring for the formats).

    Args:
        path: ``.mat`` (``ucm2`` or ``segs``), ``.png`` or ``.npy`` file.
        png_kind: ``"labels"`` (a label map) or ``"boundary"`` (a soft boundary map, divided by 255).

    Returns:
        A :class:`Prediction`.

    Raises:
        FileNotFoundError if missing; :class:`~wnet.bsds.levels.PredictionError` (a ValueError
        naming the file) for an unknown suffix, a file that cannot be read, or contents that are
        not a prediction (no expected key, wrong shape or values).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prediction file {shown(path)} does not exist")
    suffix = path.suffix.lower()
    if suffix not in PRED_SUFFIXES:
        raise PredictionError(
            f"{shown(path)}: unsupported prediction suffix {suffix!r}; expected one of {PRED_SUFFIXES}"
        )
    if png_kind not in ("labels", "boundary"):
        raise ValueError(f"png_kind must be 'labels' or 'boundary', got {png_kind!r}")
    try:
        if suffix == ".mat":
            return _load_mat(path)
        if suffix == ".png":
            return _load_png(path, png_kind)
        return as_prediction(np.load(path, allow_pickle=False), name=shown(path))
    except READ_ERRORS as e:
        raise _named(path, e) from e


def _load_mat(path: Path) -> Prediction:
    """A ``.mat`` with key ``ucm2`` (a hierarchy) or ``segs`` (a cell of label maps, or one map)."""
    m = _loadmat(path)
    if "ucm2" in m:
        ucm2 = np.asarray(m["ucm2"])
        if ucm2.dtype.kind not in "biuf":  # a string, a struct, complex numbers: not a contour map
            raise PredictionError(f"{shown(path)}: 'ucm2' holds {ucm2.dtype} values; expected real numbers")
        return as_prediction(ucm2.astype(np.float64), kind="ucm2", name=shown(path))
    if "segs" not in m:
        keys = [k for k in m if not k.startswith("__")]
        raise ValueError(f"{shown(path)}: no key 'ucm2' or 'segs' (keys: {keys})")
    segs = np.asarray(m["segs"])
    if segs.dtype == object:
        levels = [np.asarray(s) for s in segs.reshape(-1)]
    elif segs.ndim == 2:
        levels = [segs]
    else:
        raise ValueError(
            f"{shown(path)}: 'segs' must be a cell of label maps or one 2-D map, got {segs.shape}"
        )
    return as_prediction(levels, kind="segs", name=shown(path))


def _load_png(path: Path, png_kind: str) -> Prediction:
    """A single-channel PNG: a label map, or a soft boundary map scaled to [0, 1]."""
    img = decode_file(path, what="PNG")  # bytes by Python, decoded by OpenCV; truncation refused
    if img.ndim != 2:
        raise ValueError(f"{shown(path)}: expected a single-channel PNG, got shape {img.shape}")
    if png_kind == "boundary":
        # official: double(imread(inFile)) / 255 (an 8-bit map); 16-bit maps use their own range
        scale = 255.0 if img.dtype == np.uint8 else float(np.iinfo(img.dtype).max)
        return as_prediction(img.astype(np.float64) / scale, kind="pb", name=shown(path))
    return as_prediction(img.astype(np.int64), kind="segs", name=shown(path))


def pair_files(pred_dir: str | Path, gt_dir: str | Path) -> list[tuple[str, Path, Path]]:
    """Match each prediction file to its ground truth by file stem.

    Returns:
        ``(image id, prediction path, ground-truth path)`` sorted by id.

    Raises:
        FileNotFoundError for a missing/empty folder or a prediction without ground truth;
        ValueError when two predictions share an id (``x.mat`` and ``x.npy``). A ``.png`` beside a
        ``.mat`` of the same id is taken as its picture (as ``task=segment`` writes ``ucm2/x.png``
        beside ``ucm2/x.mat``) and skipped: the ``.mat`` is the prediction.
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    for d, what in ((pred_dir, "prediction"), (gt_dir, "ground-truth")):
        if not d.is_dir():
            raise FileNotFoundError(f"{what} folder {d} does not exist")
    preds = sorted(p for p in pred_dir.iterdir() if p.is_file() and p.suffix.lower() in PRED_SUFFIXES)
    mats = {p.stem for p in preds if p.suffix.lower() == ".mat"}
    preds = [p for p in preds if not (p.suffix.lower() == ".png" and p.stem in mats)]
    if not preds:
        raise FileNotFoundError(f"prediction folder {pred_dir} holds no {'/'.join(PRED_SUFFIXES)} files")
    seen: dict[str, Path] = {}
    out = []
    for p in preds:
        if p.stem in seen:
            raise ValueError(f"two predictions for image {p.stem!r}: {seen[p.stem]} and {p}")
        seen[p.stem] = p
        gt = gt_dir / f"{p.stem}.mat"
        if not gt.is_file():
            raise FileNotFoundError(f"prediction {p} has no ground truth: {gt} does not exist")
        out.append((p.stem, p, gt))
    return out
