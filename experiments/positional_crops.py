"""Does a trained W-Net segment content or tile positions? Positional kappa on same-size crops.

Takes the top-left ``--size`` x ``--size`` crop of the first ``--images`` files of a folder (sorted
by name), predicts each crop on its own in eval mode, and prints the mean Cohen's kappa between
the argmax maps of different crops (``wnet.positional.positional_kappa``): about 0 when labels
follow content, 1 for a content-blind tiling. With crops of the training size the net sees what
it saw in training, so this isolates the tiling from any train/test resolution gap.

    python experiments/positional_crops.py --checkpoint runs/bsds500_cpu/last.pt \\
        --images DIR/BSDS500/images/test --size 96 --count 8

Used for docs/positional.md (seeds 0, 1, 2 of bsds500_cpu.yaml: 0.80, 0.40, 0.94).
"""

from __future__ import annotations

import argparse
import itertools
import sys

import torch

from wnet.datasets.images import list_images, read_image
from wnet.positional import positional_kappa
from wnet.tasks.errors import UserError
from wnet.tasks.runtime import load_wnet


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="a W-Net checkpoint (last.pt or its run folder)")
    ap.add_argument("--images", required=True, help="folder of images (the first --count, by name)")
    ap.add_argument("--size", type=int, default=96, help="side of the top-left crop, px")
    ap.add_argument("--count", type=int, default=8, help="number of images (pairs: count*(count-1)/2)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    try:  # a missing or foreign file is one line, not a traceback
        model, cfg = load_wnet(args.checkpoint, torch.device("cpu"))
        files = list_images(args.images)[: args.count]
    except (UserError, FileNotFoundError) as e:
        sys.exit(f"positional_crops: error: {e}")
    crops = [torch.from_numpy(read_image(f, cfg.model.in_channels)).permute(2, 0, 1) for f in files]
    small = [f.name for f, c in zip(files, crops, strict=True) if min(c.shape[1:]) < args.size]
    if len(files) < 2 or small:
        sys.exit(
            f"positional_crops: need >= 2 images of at least {args.size} px; too few or too small: {small}"
        )
    x = torch.stack([c[:, : args.size, : args.size] for c in crops])  # (N, C, size, size)
    model.eval()
    with torch.no_grad():
        labels = model.encode(x).argmax(1)  # (N, size, size)
    kappa, pairs = positional_kappa(list(labels), cfg.model.k, args.count)
    same = [(a == b).float().mean().item() for a, b in itertools.combinations(labels, 2)]
    agree = sum(same) / len(same)
    print(f"{args.checkpoint}: K={cfg.model.k}, {len(files)} crops of {args.size} px, {pairs} pairs: "
          f"positional kappa {kappa:.3f} (raw agreement {agree:.3f})")  # fmt: skip
    return {"kappa": kappa, "pairs": pairs, "agreement": agree}


if __name__ == "__main__":
    main()
