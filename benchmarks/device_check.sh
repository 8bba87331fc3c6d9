#!/usr/bin/env bash
# The prepared GPU check: one bounded run that measures what only a GPU machine can tell.
#
# Run from anywhere (it works in the repository that holds it), with the machine's own
# python3 (PYTHON=... to choose another); nothing is installed and nothing outside the
# repository is read but the shared RAMSES maps (--shared DIR or TURBSIM_SHARED; else
# REPO/shared or REPO/../shared). Steps, each under its own `timeout`, the whole within
# --budget seconds (default 480):
#
#   env              python, package versions against the project's pins, JAX devices,
#                    nvidia-smi, CPUs
#   build            the kernels built in place without setuptools (build_kernels.py)
#   import           `import turbsim` from the built tree and one small simulation
#   train            training images/s of study_cnn and pyramid at 64 and 128 px, batch
#                    64 and 256, after compilation (train.py, conv_impl auto)
#   torch            the study CNN in PyTorch eager, same sizes and batches (train_torch.py)
#   live             live training fed by simulation workers on all cores but one, with
#                    the share of the time the loop waits for data (device_steps.py live)
#   solver           solver thread scaling 1-16 threads at 128^3 and 256^3 (solver.py --threads)
#   ramses_generate  the ramses64 preset with 16 workers
#   ramses_fit       the pyramid trained on it to the docs' recipe, scored on its holdout
#                    and on the RAMSES maps
#
# A step that cannot run is skipped with the reason (torch not installed, kernels not
# built, no time left, ...); a failed or timed-out step is logged with the tail of its
# output and the check goes on. Writes the log (OUT/device_check.log) and the figures
# (OUT/device_check.json), OUT being $OUT when set, else --out DIR (default
# REPO/runs/device_check). Everything else goes to a scratch folder that is removed
# at the end (--keep-work keeps it).
#
# Usage:
#   benchmarks/device_check.sh                     # the full check (about 6-8 minutes on the GPU machine)
#   benchmarks/device_check.sh --dry-run           # tiny sizes on the CPU, a minute: tests the check itself
#   benchmarks/device_check.sh --steps train,torch # some steps only (a rerun)
#   benchmarks/device_check.sh --help
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
BUDGET=""
DRY=0
OUTDIR=""
SHARED_ARG=""
SELECT=""
KEEP=0
RAMSES_SIMS=""
RAMSES_EPOCHS=""
LIVE_SECONDS=""

usage() { sed -n '2,/^set -u/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; cat <<'EOF'
Options:
  --dry-run           tiny sizes, JAX on the CPU, kernels built -O0 in a scratch copy of the tree
  --budget S          wall-clock budget of the whole check [s] (default 480; dry run 300)
  --out DIR           where the log and JSON go when $OUT is not set
  --shared DIR        the shared folder holding ramses/ensemble_dev/binary64_dev.npz
  --steps A,B,...     run only these steps (the others are logged as not run)
  --ramses-sims N     simulations of the ramses64 ensemble (default 1000: the preset)
  --ramses-epochs N   epochs of the ramses64 pyramid (default 20: the recipe)
  --live-seconds S    training time of the live step (default 35)
  --keep-work         keep the scratch folder (its path is logged)
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --budget) BUDGET=${2:?}; shift ;;
        --out) OUTDIR=${2:?}; shift ;;
        --shared) SHARED_ARG=${2:?}; shift ;;
        --steps) SELECT=${2:?}; shift ;;
        --ramses-sims) RAMSES_SIMS=${2:?}; shift ;;
        --ramses-epochs) RAMSES_EPOCHS=${2:?}; shift ;;
        --live-seconds) LIVE_SECONDS=${2:?}; shift ;;
        --keep-work) KEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "device_check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for v in "$BUDGET" "$RAMSES_SIMS" "$RAMSES_EPOCHS" "$LIVE_SECONDS"; do
    case "$v" in
        '') ;;
        *[!0-9]*|0*) echo "device_check.sh: numbers must be positive integers, got $v" >&2; exit 2 ;;
    esac
done
ALL_STEPS="env build import train torch live solver ramses_generate ramses_fit"
if [ -n "$SELECT" ]; then
    for s in ${SELECT//,/ }; do
        case " $ALL_STEPS " in *" $s "*) ;; *) echo "device_check.sh: unknown step $s (steps: $ALL_STEPS)" >&2; exit 2 ;; esac
    done
fi

# ---- where things go --------------------------------------------------------------------
if [ -n "${OUT:-}" ]; then OUTDIR=$OUT; fi
[ -n "$OUTDIR" ] || OUTDIR=$REPO/runs/device_check
mkdir -p "$OUTDIR" || exit 2
OUTDIR=$(cd "$OUTDIR" && pwd)
LOG=$OUTDIR/device_check.log
JSON=$OUTDIR/device_check.json
WORK=$(mktemp -d "${TMPDIR:-/tmp}/device_check.XXXXXX") || exit 2
: >"$LOG"
cleanup() { [ "$KEEP" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT

# ---- sizes --------------------------------------------------------------------------------
if [ "$DRY" = 1 ]; then
    : "${BUDGET:=300}"                 # a bound for a loaded machine: about a minute on two quiet cores
    export JAX_PLATFORMS=cpu
    KROOT=$WORK/tree                  # the kernels are built in a scratch copy: the working tree's stay
    mkdir -p "$KROOT" && cp -r "$REPO/turbsim" "$KROOT/" && rm -f "$KROOT"/turbsim/_solver/*.so
    BUILD_ARGS="--opt-level 0"
    TRAIN_ARGS="--sizes 16 --batch-size 8 --images 16 --min-seconds 0.2"
    TORCH_ARGS="--sizes 16 --batch-size 8 --images 16 --min-seconds 0.2 --threads 1"
    LIVE_ARGS="--cells 32 --scheme first --t-end 0.05 --batch-size 8 --sims-per-epoch 4 --workers 2"
    : "${LIVE_SECONDS:=1}"
    SOLVER_ARGS="--threads 1 2 --cells 16 --dtypes float64 --repeat 1 --steps 4"
    : "${RAMSES_SIMS:=24}"
    : "${RAMSES_EPOCHS:=1}"
    GEN_ARGS="--cells 16 --workers 2"
    FIT_ARGS="--pyramid-widths 4 8 --pyramid-hidden 8 --batch-size 16"
    MIN_STEP=3
    FIT_NEED=15
    #          env build import train torch live solver gen fit
    CAPS=(       30  60    20     90    60    60   30     30  100)
else
    : "${BUDGET:=480}"
    KROOT=$REPO
    BUILD_ARGS=""
    TRAIN_ARGS="--sizes 64 128 --batch-size 64 256 --images 2560 --min-seconds 1"
    TORCH_ARGS="--sizes 64 128 --batch-size 64 256 --images 2560 --min-seconds 1"
    LIVE_ARGS="--cells 64 --batch-size 64 --sims-per-epoch 480"
    : "${LIVE_SECONDS:=35}"
    SOLVER_ARGS="--threads 1 2 4 8 16 --cells 128 256 --dtypes float64 --repeat 3 --steps 128"
    : "${RAMSES_SIMS:=1000}"
    : "${RAMSES_EPOCHS:=20}"
    GEN_ARGS="--workers 16"
    FIT_ARGS="--pyramid-widths 8 16 32 48 64"
    MIN_STEP=10
    FIT_NEED=40
    #          env build import train torch live solver gen fit
    CAPS=(       40  90    30     160   60    80   75     60  170)
fi
export PYTHONPATH=$KROOT:$REPO${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
START=$(date +%s)
DATE_UTC=$(date -u +%Y-%m-%dT%H:%M:%SZ)
DEADLINE=$((START + BUDGET - 15))     # kept back: a step's 5 s to die after its timeout, the summary's 10 s

log() { printf '%s\n' "$*" | tee -a "$LOG"; }
now() { date +%s; }
selected() { [ -z "$SELECT" ] && return 0; case ",$SELECT," in *",$1,"*) return 0 ;; esac; return 1; }
status() {  # status STEP STATE RC SECONDS TIMEOUT REASON
    printf '%s\t%s\t%s\t%s\t%s\n' "$2" "$3" "$4" "$5" "$(printf '%s' "$6" | tr '\t\n' '  ')" >"$WORK/$1.status"
}
skip() {  # skip STEP REASON
    status "$1" skipped "" "" "" "$2"
    log "== $1: skipped: $2"
}
cap_of() { local i=0; for s in $ALL_STEPS; do [ "$s" = "$1" ] && { echo "${CAPS[$i]}"; return; }; i=$((i + 1)); done; }
# run_step STEP MIN_SECONDS NOTE -- command...: bounded by min(its cap, the time left), output to the log
run_step() {
    local step=$1 need=$2 note=$3; shift 4
    local cap left t t0 t1 rc secs state reason
    cap=$(cap_of "$step")
    left=$((DEADLINE - $(now)))
    t=$cap; [ "$left" -lt "$t" ] && t=$left
    [ "$need" -lt "$MIN_STEP" ] && need=$MIN_STEP
    if [ "$t" -lt "$need" ]; then skip "$step" "no time left in the budget (${left} s left, needs ${need} s)"; return 1; fi
    log "== $step (timeout ${t} s): $*"
    t0=$(date +%s.%N)
    timeout -k 5 "$t" "$@" >"$WORK/$step.out" 2>"$WORK/$step.err"
    rc=$?
    t1=$(date +%s.%N)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    cat "$WORK/$step.out" >>"$LOG"
    if [ -s "$WORK/$step.err" ]; then
        echo "-- $step: stderr (last 40 lines)" >>"$LOG"
        tail -n 40 "$WORK/$step.err" >>"$LOG"
    fi
    reason=$note
    if [ "$rc" = 0 ]; then state=ok
    elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then state="timed out"; reason="timed out after ${t} s${note:+; $note}"
    elif [ "$rc" = 3 ]; then state=skipped; reason=$(tail -n 1 "$WORK/$step.err")
    else state=failed; reason="exit $rc: $(grep -v '^\s*$' "$WORK/$step.err" | tail -n 1 | cut -c1-300)"
    fi
    status "$step" "$state" "$rc" "$secs" "$t" "$reason"
    log "== $step: $state in ${secs} s${reason:+ ($reason)}"
    [ "$state" = ok ]
}

COMMIT=$(git -C "$REPO" rev-parse --verify -q HEAD 2>/dev/null) || COMMIT=unknown
CHANGES=""
[ "$COMMIT" != unknown ] && ! git -C "$REPO" diff --quiet HEAD 2>/dev/null && CHANGES=", with uncommitted changes"
log "device check $DATE_UTC in $REPO (commit $COMMIT$CHANGES)"
log "budget ${BUDGET} s; $([ "$DRY" = 1 ] && echo 'DRY RUN: tiny sizes, JAX on the CPU' || echo 'full sizes'); python: $(command -v "$PY" || echo "$PY not found"); work folder $WORK"

# ---- 1. environment ----------------------------------------------------------------------
GPU=0
if selected env; then
    {
        echo "-- nvidia-smi"
        if command -v nvidia-smi >/dev/null 2>&1; then
            timeout 15 nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv 2>&1
        else
            echo "nvidia-smi not found"
        fi
        echo "-- CPU: $(nproc 2>/dev/null) cores; $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2-)"
    } >>"$LOG" 2>&1
    run_step env 5 "" -- "$PY" "$REPO/benchmarks/device_steps.py" env --json
fi
BACKEND=$("$PY" - "$WORK/env.out" <<'EOF' 2>/dev/null
import json, sys
try:
    lines = [l for l in open(sys.argv[1]) if l.startswith("{")]
    print(json.loads(lines[-1]).get("jax_backend") or "none")
except Exception:
    print("unknown")
EOF
)
case "$BACKEND" in gpu|cuda|rocm) GPU=1 ;; esac
if [ "$GPU" = 1 ]; then log "JAX backend: $BACKEND"
elif [ "$DRY" = 1 ]; then log "no GPU (dry run): every step runs on the CPU"
else log "WARNING: no GPU (JAX backend $BACKEND): the steps run on the CPU and their figures are CPU figures"
fi

# ---- 2. the kernels ----------------------------------------------------------------------
BUILT=0
if selected build; then
    # shellcheck disable=SC2086
    run_step build 10 "" -- "$PY" "$REPO/benchmarks/build_kernels.py" --root "$KROOT" --json $BUILD_ARGS && BUILT=1
else
    ls "$KROOT"/turbsim/_solver/_kernels*.so >/dev/null 2>&1 && BUILT=1
fi
if selected import; then
    if [ "$BUILT" = 1 ]; then
        run_step import 5 "" -- "$PY" "$REPO/benchmarks/device_steps.py" kernels --json || BUILT=0
    else
        skip import "kernels not built"
    fi
fi

# ---- what the learning steps need (an import, bounded like the steps) ---------------------------
JAX_OK=""
JAX_WHY=""
bounded() {  # bounded CAP command...: the command under min(CAP, the time left) seconds; 124 when no time is left
    local t=$1 left=$((DEADLINE - $(now))); shift
    [ "$left" -lt "$t" ] && t=$left
    [ "$t" -ge 1 ] || return 124
    timeout -k 2 "$t" "$@"
}
jax_ok() {  # whether JAX, Flax and learn import; the reason in JAX_WHY (the env step's answer, else checked once)
    if [ -z "$JAX_OK" ] && [ -s "$WORK/env.out" ]; then
        JAX_WHY=$("$PY" - "$WORK/env.out" <<'EOF' 2>/dev/null
import json, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("{")]
err = json.loads(lines[-1]).get("learn_import_error", "unknown") if lines else "unknown"
print("ok" if err is None else err)
EOF
)
        case "$JAX_WHY" in
            ok) JAX_OK=1; JAX_WHY="" ;;
            ''|unknown) JAX_WHY="" ;;
            *) JAX_OK=0; JAX_WHY="jax/flax/learn not importable: ${JAX_WHY:0:200}" ;;
        esac
    fi
    if [ -z "$JAX_OK" ]; then
        bounded 60 "$PY" -c "import jax, flax, optax, learn.train" >/dev/null 2>"$WORK/jax_import.err"
        case $? in
            0) JAX_OK=1 ;;
            124|137) JAX_OK=0; JAX_WHY="no time left in the budget (importing jax and learn did not finish)" ;;
            *) JAX_OK=0
               JAX_WHY="jax/flax/learn not importable: $(grep -v '^\s*$' "$WORK/jax_import.err" | tail -n 1 | cut -c1-200)" ;;
        esac
    fi
    [ "$JAX_OK" = 1 ]
}

# ---- 3. training images/s (JAX) --------------------------------------------------------------
if selected train; then
    if jax_ok; then
        # shellcheck disable=SC2086
        run_step train 20 "" -- "$PY" "$REPO/benchmarks/train.py" --models study_cnn pyramid --variants split_auto \
            --jsonl $TRAIN_ARGS
    else
        skip train "$JAX_WHY"
    fi
fi

# ---- 4. the PyTorch anchor --------------------------------------------------------------------
if selected torch; then
    # without PyTorch the script exits 3 saying "torch not installed": the step is skipped with that reason
    # shellcheck disable=SC2086
    run_step torch 15 "" -- "$PY" "$REPO/benchmarks/train_torch.py" --jsonl $TORCH_ARGS
fi

# ---- 5. live training -------------------------------------------------------------------------
if selected live; then
    if [ "$BUILT" != 1 ]; then skip live "kernels not built"
    elif ! jax_ok; then skip live "$JAX_WHY"
    else
        # shellcheck disable=SC2086
        run_step live $((LIVE_SECONDS + 10)) "" -- "$PY" "$REPO/benchmarks/device_steps.py" live --json \
            --seconds "$LIVE_SECONDS" --out "$WORK/live_run" $LIVE_ARGS
    fi
fi

# ---- 7. solver thread scaling (before the long ramses64 steps) ----------------------------------
if selected solver; then
    if [ "$BUILT" != 1 ]; then skip solver "kernels not built"
    elif ! grep -q -- '"--threads"' "$REPO/benchmarks/solver.py"; then skip solver "benchmarks/solver.py has no --threads option"
    else
        # shellcheck disable=SC2086
        run_step solver 10 "" -- "$PY" "$REPO/benchmarks/solver.py" --json $SOLVER_ARGS
    fi
fi

# ---- 6. ramses64 with 16 workers, the pyramid trained on it -------------------------------------
ENSEMBLE=$WORK/ramses64.h5
GENERATED=0
if selected ramses_generate; then
    if [ "$BUILT" != 1 ]; then skip ramses_generate "kernels not built"
    else
        note=""
        [ "$RAMSES_SIMS" != 1000 ] && note="$RAMSES_SIMS simulations instead of the preset's 1000"
        # shellcheck disable=SC2086
        run_step ramses_generate 10 "$note" -- "$PY" -m turbsim.generate ramses64 -o "$ENSEMBLE" --sims "$RAMSES_SIMS" \
            --no-progress --json $GEN_ARGS && GENERATED=1
    fi
fi
if selected ramses_fit; then
    SHARED_DIR=${SHARED_ARG:-${TURBSIM_SHARED:-}}
    if [ -z "$SHARED_DIR" ]; then
        for d in "$REPO/shared" "$REPO/../shared"; do [ -d "$d/ramses" ] && { SHARED_DIR=$d; break; }; done
    fi
    MAPS=${SHARED_DIR:+$SHARED_DIR/ramses/ensemble_dev/binary64_dev.npz}
    EVAL=()
    note=""
    if [ -n "$MAPS" ] && [ -f "$MAPS" ]; then EVAL=(--eval-data "$MAPS")
    else note="RAMSES maps not found (--shared DIR or TURBSIM_SHARED): scored on the holdout only"
    fi
    [ "$RAMSES_EPOCHS" != 20 ] && note="${note:+$note; }$RAMSES_EPOCHS epochs instead of the recipe's 20"
    if [ "$GENERATED" != 1 ]; then skip ramses_fit "no ramses64 ensemble (the generate step did not succeed)"
    elif ! jax_ok; then skip ramses_fit "$JAX_WHY"
    else
        [ -n "$note" ] && log "ramses_fit: $note"
        # the docs' recipe (docs/results.md, 'To repeat it'), with the readout refitted on symmetrized energies
        # shellcheck disable=SC2086
        run_step ramses_fit "$FIT_NEED" "$note" -- "$PY" -m learn.fit --data "$ENSEMBLE" --out "$WORK/ramses64_pyramid" \
            --model pyramid --padding circular --augment flip rot90 --normalisation per_image \
            --optimizer adamw --lr 2e-3 --warmup-epochs 1 --epochs "$RAMSES_EPOCHS" --patience 0 --steps-per-call 4 \
            --refit-readout --symmetrize --holdout --eval-splits test holdout "${EVAL[@]}" --baselines spectrum \
            --no-progress --json $FIT_ARGS
    fi
fi

# ---- summary ------------------------------------------------------------------------------------
for s in $ALL_STEPS; do
    selected "$s" || [ -f "$WORK/$s.status" ] || status "$s" "not run" "" "" "" "not among the selected steps (--steps $SELECT)"
done
WALL=$(($(now) - START))
log ""
log "== summary (${WALL} s of the ${BUDGET} s budget)"
if timeout 10 "$PY" "$REPO/benchmarks/device_steps.py" summary --work "$WORK" --json-out "$JSON" \
        --meta started="$START" wall_s="$WALL" budget_s="$BUDGET" dry_run="$DRY" gpu="$GPU" backend="$BACKEND" \
        repo="$REPO" commit="$COMMIT" date_utc="$DATE_UTC" log="$LOG" >"$WORK/summary.out" 2>"$WORK/summary.err"; then
    tee -a "$LOG" <"$WORK/summary.out"
else
    log "summary failed: $(tail -n 3 "$WORK/summary.err")"
    for s in $ALL_STEPS; do [ -f "$WORK/$s.status" ] && log "step $s: $(cut -f1,5 "$WORK/$s.status" | tr '\t' ' ')"; done
fi
[ "$KEEP" = 1 ] && log "work folder kept: $WORK"
log "log: $LOG; figures: $JSON"
exit 0
