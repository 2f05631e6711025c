"""One scorer for every segmenter on a labelled split: supervised U-Nets and unsupervised W-Nets alike.

A segmenter is a ``predict_fn`` mapping an image batch (B, C_in, H, W) to label maps (B, H, W);
images of different sizes go in separate batches (:func:`same_size_batches`). Its labels are
counted against the ground truth in ONE confusion matrix over the whole split
(``wnet.metrics.ConfusionMatrix``). Supervised labels are classes and are scored directly;
unsupervised labels are K cluster ids, matched to the C classes by the Hungarian algorithm on that
dataset-level matrix (as PiCIE and STEGO do) and then scored with exactly the same
``segmentation_scores``. Clusters left unmatched (K > C) stay errors of their true class.

References:
    Cho et al., "PiCIE", CVPR 2021, sec. 4 (Hungarian matching over the evaluation set).
    Hamilton et al., "STEGO", ICLR 2022, sec. 4.
    Long, Shelhamer, Darrell, "Fully Convolutional Networks", CVPR 2015, sec. 5 (the scores).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate
from tqdm import tqdm

from wnet import metrics
from wnet.positional import positional_kappa

PredictFn = Callable[[torch.Tensor], torch.Tensor | np.ndarray]


def same_size_batches(dataset, batch_size: int) -> Iterator[tuple[list[int], dict]]:
    """The items of ``dataset`` in order, ``batch_size`` at a time, each chunk split into batches of
    images of one size: labelled sets whose images differ in size (photos of any shape) need no
    ``batch_size=1``. A chunk of equal sizes is one batch, as a ``DataLoader`` would give.

    Yields:
        (the items' positions in ``dataset``, the batch: ``default_collate`` of those items).
    """
    start = 0
    for items in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=list):
        groups: dict[tuple, list[int]] = {}
        for j, item in enumerate(items):
            groups.setdefault(tuple(item["image"].shape), []).append(j)
        for js in groups.values():
            yield [start + j for j in js], default_collate([items[j] for j in js])
        start += len(items)


def spread_indices(n: int, count: int) -> list[int]:
    """``count`` positions spread evenly over ``range(n)`` (all of them when ``count >= n``)."""
    return np.unique(np.linspace(0, n - 1, min(n, count)).round().astype(int)).tolist() if count > 0 else []


def evaluate_labelled(
    predict_fn: PredictFn,
    dataset,
    num_classes: int,
    ignore_index: int | None = None,
    num_clusters: int | None = None,
    batch_size: int = 4,
    match: str = "hungarian",
    desc: str = "eval",
    kappa_images: int = 0,
) -> dict:
    """Score ``predict_fn`` on every item of ``dataset`` with the library's metrics.

    Args:
        predict_fn: image batch (B, C_in, H, W) float in [0, 1] -> labels (B, H, W) (torch or
            NumPy, integer). Class ids in ``[0, C)``, or cluster ids in ``[0, K)`` when
            ``num_clusters`` is given.
        dataset: items ``{"image": (C_in, H, W), "label": (H, W) int64, ...}`` (``wnet.datasets``).
        num_classes: C.
        ignore_index: label left out of the scores (CamVid 11), or None.
        num_clusters: K for an unsupervised segmenter: its clusters are matched to classes with
            ``metrics.match_clusters(cm, match)`` on the split's confusion matrix. None: the
            predictions are already classes.
        batch_size: images per ``predict_fn`` call at most (images of one size per call).
        match: ``'hungarian'`` (one-to-one, default) or ``'majority'`` (many-to-one).
        desc: progress-bar label.
        kappa_images: > 0 adds the positional kappa (:func:`wnet.positional.positional_kappa`) of the
            predictions and of the ground truth (ignore label: one more class) over this many images
            spread evenly over the split: a position-following segmentation scores above its labels.

    Returns:
        ``{"cm": (C, K) raw counts, "matched_cm": (C, C + 1) class-terms matrix (unmatched
        clusters in the last column; (C, C) for supervised), "scores": segmentation_scores(...),
        "mapping": (K,) cluster -> class (-1 unmatched) or None for supervised}``; with
        ``kappa_images``, also ``"positional_kappa"`` and ``"labels_kappa"`` (floats, nan with
        fewer than two images).

    Raises:
        ValueError: an empty dataset, or a prediction of the wrong shape or out of range.
    """
    if len(dataset) == 0:
        raise ValueError("evaluate_labelled: the dataset is empty")
    k = num_classes if num_clusters is None else int(num_clusters)
    acc = metrics.ConfusionMatrix(num_classes, ignore_index, num_pred_classes=k)
    kept = set(spread_indices(len(dataset), kappa_images))
    maps: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # position -> (prediction, label), (H, W) each
    for index, batch in tqdm(
        same_size_batches(dataset, batch_size), desc=desc, leave=False, dynamic_ncols=True
    ):
        target = batch["label"]  # (B, H, W)
        pred = _shaped(predict_fn(batch["image"]), target)
        acc.update(pred, target)
        maps |= {i: (pred[j].short(), target[j]) for j, i in enumerate(index) if i in kept}
    out = score_confusion(acc.cm, num_clusters, match)
    if kappa_images:
        out |= _kappas([maps[i] for i in sorted(maps)], k, num_classes, ignore_index)
    return out


def _shaped(pred, target: torch.Tensor) -> torch.Tensor:
    """``predict_fn``'s output as a CPU tensor of the labels' shape (B, H, W), or a ValueError."""
    pred = torch.as_tensor(pred).cpu()
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(
            f"predict_fn returned shape {tuple(pred.shape)}, expected (B, H, W) = {tuple(target.shape)}"
        )
    return pred


def _kappas(maps: list[tuple], k: int, num_classes: int, ignore_index: int | None) -> dict[str, float]:
    """Positional kappa of the predicted maps (k labels) and of the label maps (ignore -> one more class)."""
    labels = [
        torch.where(t == ignore_index, num_classes, t) if ignore_index is not None else t for _, t in maps
    ]
    n = len(maps)
    return {
        "positional_kappa": positional_kappa([p.long() for p, _ in maps], k, n)[0],
        "labels_kappa": positional_kappa(labels, num_classes + 1, n)[0],
    }


def score_confusion(cm: np.ndarray, num_clusters: int | None = None, match: str = "hungarian") -> dict:
    """Scores of a split's confusion matrix, after matching clusters to classes when ``num_clusters``
    is given; the second half of :func:`evaluate_labelled` (whose Returns this follows), for
    matrices summed elsewhere (over the ranks of a data-parallel run).

    Shape:
        cm: (C, K) raw counts, K = C for a supervised segmenter.
    """
    if num_clusters is None:
        return {"cm": cm, "matched_cm": cm, "scores": metrics.segmentation_scores(cm), "mapping": None}
    mapping, matched = metrics.match_clusters(cm, match)  # (K,), (C, C + 1)
    return {
        "cm": cm,
        "matched_cm": matched,
        "scores": metrics.segmentation_scores(matched),
        "mapping": mapping,
    }


def scores_row(scores: dict) -> dict[str, float]:
    """The scalar scores of ``segmentation_scores`` (what a table or a log line shows)."""
    return {k: float(v) for k, v in scores.items() if np.ndim(v) == 0}
