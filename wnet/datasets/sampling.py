"""Training order and augmentation randomness that a resumed or distributed run reproduces exactly.

Two pieces make the stream of training batches a pure function of ``(seed, epoch, position)``:

* :class:`EpochSampler` is ``torch.utils.data.DistributedSampler`` (one permutation per epoch,
  drawn from ``seed + epoch``, split across ranks) that can start part-way through an epoch, so
  a run resumed after its k-th batch continues with batch k + 1 of the same permutation;
* :class:`SeededItems` draws item ``i`` of epoch ``e`` with torch's RNG seeded from
  ``(seed, epoch, i)`` and restored afterwards, so random crops and flips depend on nothing
  else: not on DataLoader workers, not on the rank, not on where the run was interrupted, and
  the global RNG stream (dropout, ...) is left untouched by data loading.

Shape: the sampler yields ``(epoch, index)`` keys, which :class:`SeededItems` takes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 63-bit seed for one item of one epoch (numpy's SeedSequence hashing)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class DatasetView(Dataset):
    """A dataset seen through a wrapper: its length and attributes (``class_names``, ``palette``,
    ``num_classes``, ``iter_masks`` ...) are the wrapped dataset's; subclasses change ``__getitem__``."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str):
        if name == "dataset":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, key):
        return self.dataset[key]


class SeededItems(DatasetView):
    """Wrap a dataset whose ``__getitem__`` draws from torch's global RNG (torchvision v2 transforms).

    Args:
        dataset: the wrapped dataset.
        seed: the run's seed.

    ``items[(epoch, i)]`` is ``dataset[i]`` drawn under ``torch.manual_seed(item_seed(seed, epoch, i))``
    inside ``torch.random.fork_rng`` (the caller's RNG state is restored). Plain integer keys are
    passed through unseeded (evaluation).
    """

    def __init__(self, dataset: Dataset, seed: int):
        super().__init__(dataset)
        self.seed = int(seed)

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            return self.dataset[key]
        epoch, index = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(item_seed(self.seed, epoch, index))
            return self.dataset[index]


class EpochSampler(DistributedSampler):
    """``DistributedSampler`` that yields ``(epoch, index)`` and can start at any position of an epoch.

    Args:
        dataset: the (wrapped) training set.
        num_replicas, rank: the process group (1 and 0 in a single process).
        seed: the permutation of epoch e is drawn from ``seed + e`` (as DistributedSampler does).
        shuffle: shuffle each epoch.

    Call :meth:`set_position` before iterating: ``set_position(epoch, start)`` yields this rank's
    indices of that epoch from ``start`` on (``start`` counts this rank's samples, a multiple of the
    batch size when resuming after a whole batch).
    """

    def __init__(self, dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0, shuffle: bool = True):
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False
        )
        self.start = 0

    def set_position(self, epoch: int, start: int = 0) -> None:
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self):
        indices = list(super().__iter__())[self.start :]
        return iter([(self.epoch, i) for i in indices])

    def __len__(self) -> int:
        return max(self.num_samples - self.start, 0)
