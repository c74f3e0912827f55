#!/usr/bin/env bash
# The prepared GPU check (issue 13, item 5): everything infomin claims about CUDA, in one run of at
# most 8 minutes on one CUDA machine, summarised in one table.
#
#   bench/gpu_check.sh [OUT_DIR]        # default OUT_DIR: $OUT if set, else ./gpu-check-out
#
# Stages, each time-boxed with `timeout` (seconds in brackets; 450 s in all, plus start-up):
#   1. cuda-tests   [100] pytest -m gpu, plus the tests that pick CUDA when present; no skips allowed
#   2. throughput   [150] ResNet-18 (CIFAR stem) training img/s on SimCLR views made on the GPU:
#                         fp32, AMP, AMP + channels_last, AMP + channels_last + torch.compile
#   3. views        [ 60] bench/views.py --device cuda (SimCLR views and the colour kinds on the GPU)
#   4. recipe       [140] `infomin train --recipe CIFAR_CPU --views simclr` on cifar10-npz, 3 epochs,
#                         on CUDA (needs the CIFAR-10 arrays: $INFOMIN_SHARED_DATA or ../shared/data)
# The table (stage | status | seconds | figures) is printed and written to OUT_DIR/gpu_check.md;
# each stage's full output goes to OUT_DIR/<stage>.log. Exit status: 0 if every stage passed,
# 1 if one failed or timed out, 2 if there is no CUDA device (nothing is run).
# Python: $PYTHON, else .venv/bin/python, else python3. Checks its own syntax first (bash -n).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
cd "$REPO" || exit 1

bash -n "${BASH_SOURCE[0]}" || { echo "gpu_check.sh: syntax error in this script" >&2; exit 1; }

if [[ -n "${PYTHON:-}" ]]; then PY="$PYTHON"
elif [[ -x .venv/bin/python ]]; then PY=.venv/bin/python
else PY=python3; fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONWARNINGS=ignore MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false

OUT_DIR="${1:-${OUT:-./gpu-check-out}}"
TABLE="$OUT_DIR/gpu_check.md"

# -- refuse without CUDA (fast: no stage starts) -----------------------------------------------
if ! CUDA_INFO="$("$PY" -c 'import torch, sys
if not torch.cuda.is_available():
    sys.exit(3)
p = torch.cuda.get_device_properties(0)
print(f"{torch.cuda.get_device_name(0)}, {p.total_memory / 2**30:.0f} GiB, {torch.cuda.device_count()} device(s), torch {torch.__version__}, CUDA {torch.version.cuda}")' 2>&1)"; then
    echo "gpu_check.sh: no CUDA device: torch.cuda.is_available() is False (or torch failed to" \
         "import) with $PY. This check runs only on a machine with an NVIDIA GPU; nothing was run." >&2
    [[ -n "$CUDA_INFO" ]] && echo "$CUDA_INFO" | tail -n 3 | sed 's/^/  /' >&2
    exit 2
fi

mkdir -p "$OUT_DIR" || exit 1
ROWS=()
FAILED=0
now() { date +%s.%N; }

# run_stage NAME SECONDS COMMAND...: time-boxed; the figures are the stage's lines starting "FIG "
run_stage() {
    local name="$1" limit="$2"; shift 2
    local log="$OUT_DIR/$name.log" t0 rc status figs secs
    echo "== $name (at most ${limit} s)" >&2
    t0=$(now)
    timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
    rc=$?
    secs=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
    case $rc in
        0) status=pass ;;
        124|137) status="TIMEOUT (${limit} s)"; FAILED=1 ;;
        *) status="FAIL (exit $rc)"; FAILED=1 ;;
    esac
    figs=$(grep '^FIG ' "$log" | sed 's/^FIG //' | paste -sd ';' - | sed 's/;/; /g')
    if [[ $rc -ne 0 ]]; then
        figs="${figs:+$figs; }last line: $(grep -v '^\s*$' "$log" | tail -n 1 | cut -c1-160)"
    fi
    ROWS+=("| $name | $status | $secs | ${figs:-see $name.log} |")
    echo "   $status in ${secs} s" >&2
}

# -- 1. CUDA-only tests -----------------------------------------------------------------------------
stage_tests() {
    # gpu-marked tests, then the tests that add CUDA to their devices when it is present;
    # on a CUDA machine none of them may skip
    local out rc=0 args=(-q -p no:cacheprovider -rs -o "addopts=--import-mode=importlib")
    out=$("$PY" -m pytest "${args[@]}" -m gpu tests 2>&1) || rc=1
    out+=$'\n'$("$PY" -m pytest "${args[@]}" \
        "tests/views/test_color.py::test_dtype_and_device_preserved" 2>&1) || rc=1
    echo "$out"
    echo "$out" | grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed)' | sed 's/=//g; s/^ *//; s/^/FIG /'
    if echo "$out" | grep -q '^SKIPPED'; then
        echo "a CUDA test skipped on a CUDA machine (SKIPPED lines above)"; return 1
    fi
    return $rc
}

# -- 2. ResNet-18 training throughput ------------------------------------------------------------------
read -r -d '' THROUGHPUT_PY <<'PYEOF'
import statistics, time
import torch
import infomin.views as V
from infomin.models import ContrastiveModel
from infomin.train.contrastive import ContrastiveTrainer

torch.backends.cudnn.benchmark = True
dev, batch, steps = "cuda", 256, 12
g = torch.Generator().manual_seed(0)
images = torch.randint(0, 256, (batch * steps, 3, 32, 32), dtype=torch.uint8, generator=g).to(dev)
gen = V.build("simclr").to(dev).eval().requires_grad_(False)

def pair_fn(idx, rng):
    return gen(images[idx].float().div_(255), generator=rng)

for name, amp, cl, comp in (("fp32", False, False, False), ("AMP", True, False, False),
                            ("AMP + channels_last", True, True, False),
                            ("AMP + channels_last + compile", True, True, True)):
    torch.manual_seed(0)
    model = ContrastiveModel((3, 3), "resnet18")
    tr = ContrastiveTrainer(model, pair_fn, temperature=0.2, epochs=100, steps_per_epoch=steps,
                            lr=0.1, device=dev, amp=amp, channels_last=cl, compile=comp, progress=False)
    tr.seed(torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    tr.train_epoch(len(images), batch)          # warm-up (and compilation)
    torch.cuda.synchronize()
    warm = time.perf_counter() - t0
    times = []
    for _ in range(3):
        torch.cuda.synchronize(); t0 = time.perf_counter()
        tr.train_epoch(len(images), batch)
        torch.cuda.synchronize(); times.append(time.perf_counter() - t0)
    rate = batch * steps / statistics.median(times)
    print(f"FIG resnet18 {name}: {rate:,.0f} img/s (warm-up {warm:.0f} s)", flush=True)
PYEOF

# -- 3. views on the device -----------------------------------------------------------------------
stage_views() {
    local out
    out=$("$PY" bench/views.py --device cuda 2>&1) || { echo "$out"; return 1; }
    echo "$out"
    # the infomin rows of the tables: "| name | img/s | ..." -> FIG name: img/s
    echo "$out" | awk -F'|' '/infomin views.build|lab_l_ab|cmc_lab/ {
        gsub(/^ +| +$/, "", $2); gsub(/^ +| +$/, "", $3); print "FIG " $2 ": " $3 " img/s" }'
}

# -- 4. the CIFAR recipe --------------------------------------------------------------------------------
stage_recipe() {
    local db="$OUT_DIR/mlflow.db"
    "$PY" - <<'PYEOF' || return 1
from infomin import data as D
try:
    D.load("cifar10-npz", split="test", subset=100)
except Exception as e:  # noqa: BLE001
    raise SystemExit(f"CIFAR-10 arrays not found ({e}); set INFOMIN_SHARED_DATA")
PYEOF
    local t0; t0=$(now)
    "$PY" -c 'from infomin.cli import app; app()' train --recipe CIFAR_CPU --views simclr \
        --dataset cifar10-npz --train-subset 15000 --epochs 3 --device cuda --quiet \
        --tracking-uri "sqlite:///$db" --run-name gpu-check-recipe | tee "$OUT_DIR/recipe.out" || return 1
    awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "FIG CIFAR_CPU on CUDA, 3 epochs, 15k images: %.0f s end to end\n", b - a }'
    grep -E 'eval/(linear_acc|knn_acc) ' "$OUT_DIR/recipe.out" \
        | sed -E 's/[│|]/ /g; s/ +/ /g; s/^ //' | sed 's/^/FIG /'
}

# -- syntax of the embedded Python, before any stage runs ---------------------------------------------
if ! "$PY" -c 'import sys; compile(sys.stdin.read(), "throughput", "exec")' <<<"$THROUGHPUT_PY"; then
    echo "gpu_check.sh: the embedded throughput script does not compile" >&2; exit 1
fi

export PY OUT_DIR
export -f now stage_tests stage_views stage_recipe
START=$(now)
run_stage cuda-tests 100 bash -c stage_tests
run_stage throughput 150 "$PY" -c "$THROUGHPUT_PY"
run_stage views 60 bash -c stage_views
run_stage recipe 140 bash -c stage_recipe
TOTAL=$(awk -v a="$START" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')

{
    echo "## infomin GPU check"
    echo
    echo "- device: $CUDA_INFO"
    echo "- date (UTC): $(date -u '+%Y-%m-%d %H:%M'); git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown); total ${TOTAL} s"
    echo
    echo "| stage | status | seconds | figures |"
    echo "|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
} | tee "$TABLE"
echo "table written to $TABLE; logs in $OUT_DIR/" >&2
exit $FAILED
