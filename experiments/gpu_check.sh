#!/usr/bin/env bash
# The one prepared GPU check (at most about 8 minutes on one GPU): CUDA tests, the N-Cut and CRF
# benchmarks on the GPU, bench_train.py at paper scale (bf16; channels_last and compile on/off),
# a 2-rank DDP run when there are at least two GPUs, then one summary table.
#
#   bash experiments/gpu_check.sh            # from the repository root; PYTHON=python3 by default
#   OUT=/tmp/gpu bash experiments/gpu_check.sh
#
# Without CUDA it is a dry run: it runs nothing heavy and says what it skipped and why, so that the
# script itself is exercised on every machine (tests/test_gpu_check.py runs it on the CPU).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 WANDB_MODE=disabled
SUMMARY="$OUT/gpu_check_summary.md"
echo "| check | result |" > "$SUMMARY"
echo "|---|---|" >> "$SUMMARY"
row() { echo "| $1 | $2 |" >> "$SUMMARY"; }

# run NAME SECONDS CMD...: run with a time limit, keep the log, add a row with the last line of output
run() {
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$? took=$((SECONDS - start))
  local last; last=$(grep -v '^\s*$' "$OUT/$name.log" | tail -n 1 | cut -c1-160 | tr '|' '/')
  if [ $rc -eq 0 ]; then row "$name" "ok (${took}s): $last"; else row "$name" "FAILED rc=$rc (${took}s): $last"; fi
}

GPUS=$($PY -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)" 2>/dev/null || echo 0)
MISSING=$($PY - <<'EOF' 2>/dev/null
import importlib.util as u
print(" ".join(m for m in ("cv2", "scipy", "yaml", "tqdm", "pydensecrf", "pytest") if u.find_spec(m) is None))
EOF
)
row "machine" "$(hostname), $GPUS CUDA device(s), $($PY -c 'import torch; print("torch", torch.__version__)' 2>&1), $(date -u +%F)"
[ -n "$MISSING" ] && row "missing packages" "$MISSING (carry them as wheels; the checks that need them are skipped)"

if [ "$GPUS" -eq 0 ]; then
  for c in "CUDA tests" "bench_ncut --device cuda" "bench_crf torch CRF on CUDA" "bench_train paper scale, bf16" "DDP 2 ranks (nccl)"; do
    row "$c" "skipped: no CUDA device on this machine (dry run)"
  done
  $PY experiments/bench_train.py --help > /dev/null 2>&1 && row "bench_train.py" "imports and parses (dry run)" || row "bench_train.py" "FAILED to start"
  cat "$SUMMARY"
  exit 0
fi

# 1. the CUDA tests (every test that skips without CUDA), about 1 minute
if [[ " $MISSING " == *" pytest "* ]]; then row "CUDA tests" "skipped: pytest missing"; else
  run "cuda_tests" 180 $PY -m pytest -q -p no:cacheprovider -k "cuda or gpu" tests/
fi
# 2. N-Cut and CRF on the GPU
run "bench_ncut_cuda" 120 $PY experiments/bench_ncut.py --device cuda
if [[ " $MISSING " == *" cv2 "* || " $MISSING " == *" pydensecrf "* ]]; then row "bench_crf" "skipped: cv2 / pydensecrf missing"; else
  $PY - "$OUT/images" <<'EOF'
import sys, pathlib, cv2, numpy as np
from wnet.datasets.procedural import make_image
d = pathlib.Path(sys.argv[1]); d.mkdir(exist_ok=True)
for i in range(8):
    rgb, _ = make_image(i, 320, seed=3)
    cv2.imwrite(str(d / f"{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
EOF
  run "bench_crf_cuda" 120 $PY experiments/bench_crf.py --images "$OUT/images" --max-images 8 --workers 4
fi
# 3. a training step at paper scale: bf16, channels_last and torch.compile on/off
run "bench_train_paper" 240 $PY experiments/bench_train.py --device cuda --scale paper --steps 10 --warmup 3 --threads 0 --json "$OUT/bench_train.json"
# 4. two ranks when there are two GPUs
if [ "$GPUS" -ge 2 ]; then
  run "ddp_2_ranks" 120 $PY -m torch.distributed.run --standalone --nproc_per_node=2 experiments/run.py \
      train.iterations=20 out_dir="$OUT/runs" train.device=cuda
else
  row "DDP 2 ranks (nccl)" "skipped: $GPUS GPU(s); needs 2"
fi
cat "$SUMMARY"
