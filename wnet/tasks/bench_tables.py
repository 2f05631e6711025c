"""The benchmark results files (``docs/results/bench_*.json``) as tables a reader can interpret,
and the other one-JSON jobs (``baseline_scales``).

Each row names what was measured, the baseline timed in the same run, the input's shape and the
units, then both figures and their ratio. Shapes that a results file does not hold are the
defaults of the benchmark script, which the ``reproduce.py`` job runs (its command line is in
the ``.meta.json``). Used by :mod:`wnet.tasks.results`.
"""

from __future__ import annotations

from wnet.bsds.table import HEADERS, REGION_COLUMNS, markdown_rows

MIB = 2**20
HEAD = "| measured | baseline (same run) | input | ours | baseline | ratio |"
RULE = "|---|---|---|---|---|---|"
# bench_ncut.py's and bench_crf.py's defaults, which their reproduce.py jobs run
NCUT_SHAPE = "B = 4, K = 64, 224×224, r = 5"
NCUT_RATIO_SHAPE = "B = 2, K = 32, 160×160, r = 5"
CRF_POOL = 2  # --workers
CRF_IMAGES = "BSDS500 val, 481×321"


def _x(ratio: float) -> str:
    return f"{ratio:.2f}×" if ratio < 10 else f"{ratio:.0f}×"


def ncut(r: dict) -> list[str]:
    """Soft N-Cut loss: against the exact ``unfold`` implementation, and against one conv pass."""
    ours, unfold, over = r["ours"], r["unfold"], r["unfold_over_ours"]
    rows = [HEAD, RULE,
        f"| soft N-Cut forward + backward, wall time (median) | exact `unfold` + autograd | {NCUT_SHAPE} "
        f"| {ours['median_s']:#.3g} s | {unfold['median_s']:#.3g} s | {_x(over['wall'])} faster |",
        f"| the same, peak extra memory | exact `unfold` + autograd | {NCUT_SHAPE} "
        f"| {ours['peak_bytes'] / MIB:.0f} MiB | {unfold['peak_bytes'] / MIB:.0f} MiB | {_x(over['memory'])} less |",
    ]  # fmt: skip
    ratio = r.get("ratio", {})
    names = {"ours": "fused C kernel (the CPU default)", "eager": "PyTorch eager path (no C compiler)"}
    for key, label in names.items():
        if key in ratio:
            m, conv = ratio[key], ratio["conv"]
            rows.append(
                f"| N-Cut forward + backward, {label}, CPU time per call | one depthwise 9×9 `conv2d` forward "
                f"| {NCUT_RATIO_SHAPE} | {m['cpu_ms']:#.3g} ms | {conv['cpu_ms']:#.3g} ms "
                f"| {m['ratio_cpu']:.2f}× the conv (median of pairs; min / min {m['ratio_min_cpu']:.2f}×) |"
            )
    return rows


def crf(r: dict) -> list[str]:
    """CRF throughput: the dense CRF in a loop (the baseline), in a pool, and the windowed torch CRF."""
    shape = f"{r['images']} {CRF_IMAGES}, K = {r['k']} stand-in maps, {r['torch_threads']} torch thread"
    loop = r["dense_loop_img_s"]
    rows = [HEAD, RULE,
        f"| dense CRF (pydensecrf), process pool of {CRF_POOL}, images/s | the same, plain loop | {shape} "
        f"| {r['dense_pool_img_s']:#.3g} | {loop:#.3g} | {_x(r['dense_pool_img_s'] / loop)}; output identical: "
        f"{'yes' if r['pool_equals_loop'] else 'NO'} |",
        f"| torch windowed CRF (radius {r['radius']:g}), CPU, images/s | dense CRF, plain loop | {shape} "
        f"| {r['torch_cpu_img_s']:#.3g} | {loop:#.3g} | {_x(r['torch_cpu_img_s'] / loop)}; argmax agrees on "
        f"{r['torch_vs_dense_agree_pct']:.1f} % of pixels |",
    ]  # fmt: skip
    if "torch_cuda_img_s" in r:
        rows.append(f"| torch windowed CRF, CUDA, images/s | dense CRF, plain loop | {shape} "
                    f"| {r['torch_cuda_img_s']:#.3g} | {loop:#.3g} | {_x(r['torch_cuda_img_s'] / loop)} |")  # fmt: skip
    if "ucm2_merge_s_per_img" in r:
        merge, flat = r["ucm2_merge_s_per_img"], r["ucm2_flat_s_per_img"]
        rows.append(f"| merge hierarchy (`to_ucm2`), s / image | one flat level (`mode=flat`) | {shape}, "
                    f"{r['initial_regions_mean']:.0f} initial regions | {merge:#.3g} | {flat:#.3g} | {_x(merge / flat)} the time |")  # fmt: skip
    return rows


def bsds(r: dict) -> list[str]:
    """The BSDS500 benchmark port on real hierarchies, against the matcher it replaced."""
    pi, base = r["per_image"], r.get("baseline")
    rows = [HEAD, RULE,
        f"| whole benchmark (region + boundary, {r['nthresh']} thresholds, {r['workers']} workers), wall time "
        f"| – | {r['images']} official gPb-owt-ucm ucm2 (BSDS500 val) | {r['wall_s']:.0f} s (per image: median "
        f"{pi['median']:.2f} s, 95th percentile {pi['p95']:.2f} s, max {pi['max']:.2f} s) | – | – |",
    ]  # fmt: skip
    if base:
        ours, old = sum(i["exact_s"] for i in base["images"]), sum(i["legacy_s"] or 0 for i in base["images"])
        bound = "at least " if base["ratio_is_lower_bound"] else ""
        rows.append(f"| boundary benchmark, seconds | the matcher before it (one sparse LAPJVsp call per map) "
                    f"| the {len(base['images'])} slowest of those images | {ours:.1f} s | {old:.1f} s "
                    f"| {bound}{_x(base['ratio'])} faster |")  # fmt: skip
    s = r["scores"]
    rows += ["", f"Its scores of those hierarchies (deterministic, compared exactly by `--check`): SC ODS "
             f"{s['sc_ods']:.3f}, PRI ODS {s['pri_ods']:.3f}, VI ODS {s['vi_ods']:.3f}, boundary F ODS "
             f"{s['bdry_ods_f']:.3f}, F OIS {s['bdry_ois_f']:.3f}, AP {s['bdry_ap']:.3f}; the literal per-threshold "
             f"loops give identical counts: {'yes' if r.get('literal_identical') else 'NO'}."]  # fmt: skip
    return rows


def bsds_scores(r: dict) -> list[str]:
    """bench_bsds's scores as a BSDS table row: the official gPb-owt-ucm val hierarchies, scored here."""
    s, cols = r["scores"], ("sc_ods", "pri_ods", "vi_ods", "bdry_ods_f", "bdry_ois_f", "bdry_ap")
    return ["| method | SC ODS | PRI ODS | VI ODS | F ODS | F OIS | AP |", "|---" * 7 + "|",
            f"| external: gPb-owt-ucm (BSDS500 val, {r['images']} images; computed here) | "
            + " | ".join(f"{s[c]:.3f}" for c in cols) + " |"]  # fmt: skip


PHASES = {"data": "data", "enc_forward": "U_Enc forward", "ncut_fwd_bwd": "N-Cut fwd + bwd",
          "enc_backward": "U_Enc backward", "enc_optimiser": "U_Enc optimiser",
          "recon_fwd_bwd": "reconstruction fwd + bwd", "all_optimiser": "optimiser"}  # fmt: skip


def train(r: dict) -> list[str]:
    """Training steps per second under each speed option, against the plain step, and their phases."""
    rows = []
    for scale, s in ((k, v) for k, v in r.items() if isinstance(v, dict) and "options" in v):
        shape = (
            f"{scale} scale: K = {s['k']}, width {s['width']}, {s['size']}×{s['size']}, batch {s['batch']}"
        )
        plain = s["options"]["plain"]
        rows += [
            "| option (Algorithm 1 step, images/s) | baseline (same run) | input | ours | baseline | ratio |",
            RULE,
        ]
        for name, o in s["options"].items():
            if name != "plain":
                rows.append(f"| {name} | plain step | {shape}, {r['threads']} thread, {r['device'].upper()} "
                            f"| {o['images_per_s']:#.3g} | {plain['images_per_s']:#.3g} "
                            f"| {_x(o['images_per_s'] / plain['images_per_s'])} |")  # fmt: skip
        ph = plain["phases"]
        rows += ["", f"Seconds per plain step by phase ({shape}):", "",
                 "| " + " | ".join(PHASES[k] for k in ph) + " |", "|---" * len(ph) + "|",
                 "| " + " | ".join(f"{v:.3f}" for v in ph.values()) + " |", ""]  # fmt: skip
    return rows[:-1]


def ddp(r: dict) -> list[str]:
    """Data parallel training on CPU: torchrun with 2 processes against 1."""
    d = r["ddp"]
    one, two = d["1 process"], d["2 processes (torchrun)"]
    return [HEAD, RULE,
            f"| `torchrun --nproc_per_node=2`, {r['threads']} thread each, images/s | 1 process, {r['threads']} thread, "
            f"same per-process batch | the quick default, {r['device'].upper()} | {two:#.3g} | {one:#.3g} | {_x(d['ratio'])} |"]  # fmt: skip


SEGMENT_SIZES = {"large": "a 12 MP-class photo", "medium": "a medium photo", "native": "the BSDS original"}


def segment(r: dict) -> list[str]:
    """``task=segment`` on large photos: time and peak memory, against the code before the working
    grid where that could run; the working-grid CRF's agreement with the whole-image CRF."""
    this, base = r["runs"]["this"], r["runs"].get("baseline", {})
    rows = [HEAD, RULE]
    for which, label in SEGMENT_SIZES.items():
        a, b = this[which], base.get(which, {})
        shape = (
            f"{label}: val 101085 at {a['width']}×{a['height']} ({a['megapixels']:.2f} MP), default outputs"
        )
        if "wall_s" in b:
            rows += [f"| `task=segment`, wall s (CPU s), 1 thread | the code before the working grid | {shape} "
                     f"| {a['wall_s']:.0f} ({a['cpu_s']:.0f}) | {b['wall_s']:.0f} ({b['cpu_s']:.0f}) "
                     f"| {a['wall_s'] / b['wall_s']:.2f}× the time |",
                     f"| the same, peak resident memory | the code before the working grid | {shape} "
                     f"| {a['max_rss_mb']} MB | {b['max_rss_mb']} MB | {a['max_rss_mb'] / b['max_rss_mb']:.2f}× the memory |"]  # fmt: skip
        else:
            note = "not run" + (f" ({b['skipped']})" if "skipped" in b else "")
            rows.append(f"| `task=segment`, wall s (CPU s), 1 thread; peak resident memory | {note} | {shape} "
                        f"| {a['wall_s']:.0f} ({a['cpu_s']:.0f}); {a['max_rss_mb']} MB | – | – |")  # fmt: skip
    c = r.get("crf_agreement")
    if c:
        rows += ["", f"CRF on the working grid against the dense CRF of the whole image ({c['images']} val images "
                 f"upscaled {c['scale']:g}×, grid factor {c['factor']}, deterministic): the full-size CRF labels "
                 f"agree on {c['agree_pct_mean']:.1f} % of pixels (lowest image {c['agree_pct_min']:.1f} %); "
                 f"no CRF at all agrees on {c['raw_argmax_agree_pct_mean']:.1f} %."]  # fmt: skip
    return rows


LOSS_BASELINES = {"multiclass": "`F.cross_entropy`", "binary": "`F.binary_cross_entropy_with_logits`"}


def _ms(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:#.3g}"


def losses(r: dict) -> list[str]:
    """Each supervised loss, forward + backward, against PyTorch's own loss for its mode."""
    b, c, h, w = r["shape"]
    rows = [f"Load average of the machine when the run started: {r['load_average']:.1f}.", "", HEAD, RULE]
    for name, x in r["losses"].items():
        logits = (b, c if x["mode"] == "multiclass" else 1, h, w)
        shape = f"{x['mode']} logits {logits}, {r['threads']} thread"
        rows.append(f"| `{name}` forward + backward, CPU ms per call (median) | {LOSS_BASELINES[x['mode']]} "
                    f"forward + backward | {shape} | {_ms(x['ms'])} | {_ms(x['baseline_ms'])} "
                    f"| {x['ratio']:.1f}× the baseline (median of {r['repeats']} pairs) |")  # fmt: skip
    return rows


def baseline_scales(r: dict) -> list[str]:
    """experiments/baseline_scales.py: the in-harness mean shift and FH sweeps beside sweeps that
    reach coarse segmentations, on the region benchmark (deterministic scores)."""
    levels = sorted({s["levels"] for s in r["sweeps"].values()})
    rows = [f"Region benchmark, BSDS500 {r['split']}, the first {r['images']} images, "
            f"{'/'.join(map(str, levels))} levels per sweep, labels from 1; \"regions\" is the median "
            "region count of the finest and the coarsest level.", "",
            f"| sweep | {' | '.join(HEADERS[: len(REGION_COLUMNS)])} | regions |", "|---" * 8 + "|"]  # fmt: skip
    for s in r["sweeps"].values():
        cells = " | ".join(f"{s[c]:.3f}" for c in REGION_COLUMNS)
        rows.append(f"| {s['label']} | {cells} | {s['regions_finest']:.0f} -> {s['regions_coarsest']:.0f} |")
    return rows


RENDER = {"bench_ncut": ncut, "bench_losses": losses, "bench_crf": crf, "bench_bsds": bsds, "bench_train": train,
          "bench_ddp": ddp, "bench_segment": segment, "baseline_scales": baseline_scales}  # fmt: skip


def ncut_summary(r: dict) -> str:
    """One sentence for the README: the N-Cut's speed-up and memory saving."""
    over = r["unfold_over_ours"]
    return (f"The exact soft N-Cut (forward + backward, {NCUT_SHAPE}) runs {_x(over['wall'])} faster than an "
            f"exact `unfold` implementation and needs {_x(over['memory'])} less memory")  # fmt: skip


GPB_METRICS = {"sc": "SC", "pri": "PRI", "vi": "VI"}


def gpb_val(r: dict) -> list[str]:
    """experiments/gpb_val.py's results: gPb-owt-ucm computed here against the official val hierarchies,
    metric by metric (ODS, OIS; boundary F and AP), the tolerance of the check, and the time per image."""
    cols = [f"{m}_{s}" for m in GPB_METRICS for s in ("ods", "ois")] + ["bdry_ods_f", "bdry_ois_f", "bdry_ap"]
    heads = [f"{GPB_METRICS[c.split('_')[0]]} {c.split('_')[1].upper()}" for c in cols[:6]] + [
        "F ODS",
        "F OIS",
        "AP",
    ]
    diff, tol, ok = r["difference"], r["tolerance"], r["within"]
    official, ours = r["rows"]["official"], r["rows"]["ours"]
    missed = [h for c, h in zip(cols, heads, strict=True) if not ok[c]]
    verdict = "every figure within tolerance" if not missed else f"outside tolerance: {', '.join(missed)}"
    t = r["timing"]
    cpu = t.get("total_cpu_seconds")
    timing = (
        f"Per image: CPU {cpu['median']:.1f} s median, {cpu['p90']:.1f} s p90, {cpu['max']:.1f} s max "
        f"(one thread; {r['machine']['cpu']})."
        if cpu
        else t.get("note", "")
    )
    solver = r.get("eigensolver", "multigrid")
    solver = "" if solver == "multigrid" else f", eigensolver `{solver}`"
    return [
        f"BSDS500 val, {r['n_images_scored']} images, {r['nthresh']} thresholds, OWT-UCM layout `{r['watershed']}`"
        f"{solver}; "
        f"{verdict}. {timing}",
        "",
        f"| | {' | '.join(heads)} |",
        "|---" * (len(cols) + 1) + "|",
        f"| official gPb-owt-ucm (`ucm2_gpb/val`) | {' | '.join(f'{official[c]:.3f}' for c in cols)} |",
        f"| computed here | {' | '.join(f'{ours[c]:.3f}' for c in cols)} |",
        f"| difference | {' | '.join(f'{diff[c]:+.3f}' for c in cols)} |",
        f"| tolerance | {' | '.join(f'{tol[c]:.2f}' for c in cols)} |",
    ]


def val_rows(r: dict) -> list[str]:
    """experiments/owt_val.py's ``owt_val.json`` (row name -> benchmark summary) as a table, with each
    row's image count and thresholds."""
    first = next(iter(r.values()))
    return [
        f"BSDS500 val, {first['n_images']} images, {first['n_levels']} thresholds, the project's benchmark.",
        "",
        *markdown_rows(r),
    ]


# results files rendered from themselves alone: experiments/gpb_val.py's and owt_val.py's
JSON_ONLY = {
    "gpb_val": gpb_val,
    "gpb_val_lines": gpb_val,
    "gpb_val_image_textons": gpb_val,
    "gpb_val_image_textons_lines": gpb_val,
    "gpb_val_multigrid16": gpb_val,
    "gpb_val_arpack16": gpb_val,
    "paper_hierarchies_val": val_rows,
}
