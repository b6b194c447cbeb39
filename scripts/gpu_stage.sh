#!/bin/bash
# One training stage on a GPU machine with many cores, in a fixed time: simulate fresh training
# parcels there, fine-tune the shipped model with a one-cycle schedule fitted to the time left
# (train.py --fit-epochs), write weights and training card to $STAGE_OUT for scripts/export.py.
#
#   bash scripts/gpu_stage.sh                     # defaults: an H200 with 16 cores, 565 s in all
#   DEV=cpu N7=10 N8=6 NVAL=12 W=2 LW=2 EPOCHS=6 TILES=32 BS=8 AVG=2 BUDGET=150 RESERVE=60 \
#       bash scripts/gpu_stage.sh                 # a dry run of every step on a laptop
#
# BUDGET is the seconds the whole script may take: training ends by then less 30 s for saving
# (train.py --deadline), whatever simulating, preprocessing and mining took. Should less than a minute
# be left for training once RESERVE seconds for preprocessing and mining are set aside, it stops
# before training (exit 3). Should it overrun, a watchdog copies the checkpoints to $STAGE_OUT first.
# Simulated folders are kept (--skip-existing), so a rerun on the same machine goes straight to
# training. Then, where the validation and held-out sets are:
#   python scripts/export.py --weights $STAGE_OUT/parcelscan.pt --card $STAGE_OUT/parcelscan.json \
#       --data out/train7 --val out/val out/val2 out/val3 --val-single out/val_single
set -u
T0=$(date +%s)
cd "$(dirname "$0")/.." || exit 1 # the repository root: relative paths below start there
DATA=${DATA:-out}    # where the simulated folders val, train7, train8 go
STAGE_OUT=${STAGE_OUT:-out/gpu_stage}
N7=${N7:-3500}      # training parcels, 1-8 other items (the held-out set's range)
N8=${N8:-2500}      # training parcels, 1-16 other items (clutter beyond it)
NVAL=${NVAL:-400}   # out/val, seed 2: the same parcels as everywhere
BUDGET=${BUDGET:-565}
RESERVE=${RESERVE:-100}
DEV=${DEV:-cuda}
W=${W:-16}          # simulation and preprocessing processes
LW=${LW:-10}        # tile loader processes
EPOCHS=${EPOCHS:-80}
TILES=${TILES:-16384}
BS=${BS:-64}
AVG=${AVG:-8}
INIT=${INIT:-models/parcelscan.pt}
WORK=${WORK:-out/train_gpu_stage}
mkdir -p "$STAGE_OUT" || exit 1
el() { echo $(($(date +%s) - T0)); }
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
echo "== $(el) s $(date +%T), $(nproc) cores"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
python3 -c "import torch, numpy, onnxruntime; print('torch', torch.__version__, 'numpy', numpy.__version__, \
'onnxruntime', onnxruntime.__version__, 'cuda', torch.cuda.is_available())" || exit 1
if [ "$DEV" = cuda ] && ! python3 -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
  echo "DEV=cuda but torch sees no CUDA device"; exit 2
fi
sim() { python3 -m parcelscan.cli simulate --workers "$W" --quiet --skip-existing "$@"; } # a rerun keeps them
sim --count "$NVAL" --seed 2 --out "$DATA/val" || exit 1
sha256sum "$DATA/val/index.json"
echo "== $(el) s: $DATA/val simulated"
GPUTESTS=
if [ "$DEV" = cuda ]; then # the GPU tests, while the training parcels simulate
  (timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_gpu_training.py tests/test_gpu.py -rs \
    >"$STAGE_OUT/gputests.log" 2>&1; echo "rc=$?" >>"$STAGE_OUT/gputests.log") &
  GPUTESTS=$!
fi
sim --count "$N7" --seed 23 --single-energy-share 0.15 --out "$DATA/train7" || exit 1
echo "== $(el) s: $DATA/train7 simulated ($N7)"
sim --count "$N8" --seed 24 --clutter 1 16 --single-energy-share 0.15 --out "$DATA/train8" || exit 1
echo "== $(el) s: $DATA/train8 simulated ($N8)"
if [ -n "$GPUTESTS" ]; then # not a bare `wait`: that would also wait for a caller's log tee
  wait "$GPUTESTS"
  tail -4 "$STAGE_OUT/gputests.log"
fi
LEFT=$((BUDGET - $(el) - RESERVE))
if [ "$LEFT" -lt 60 ]; then
  echo "== $(el) s: $LEFT s left for training, under a minute: not starting it"; exit 3
fi
(
  trap 'kill $NAP; exit' TERM # killed when train.py ends in time: its sleep goes too
  sleep $((BUDGET + 22 - $(el))) &
  NAP=$!
  wait $NAP && cp "$WORK"/best.pt "$WORK"/last.pt "$STAGE_OUT/" # last.pt holds the history too
) >/dev/null 2>&1 &
WATCHDOG=$!
DEADLINE=$((T0 + BUDGET - 30))
echo "== $(el) s: training until $(date -d @$DEADLINE +%T), about $((LEFT / 60)) min after preprocessing and mining"
python3 scripts/train.py --data "$DATA/train7" "$DATA/train8" --val "$DATA/val" --out "$STAGE_OUT" --device "$DEV" \
  --workers "$W" --loader-workers "$LW" --seed 23 --epochs "$EPOCHS" --patience "$EPOCHS" --batch-size "$BS" \
  --tiles-per-epoch "$TILES" --lr 6e-4 --deadline "$DEADLINE" --fit-epochs --average-epochs "$AVG" \
  --init "$INIT" --mine-hard --context-blocks 3 --no-export --work "$WORK"
RC=$?
kill "$WATCHDOG" 2>/dev/null
cp "$WORK"/best.pt "$WORK"/history.json "$STAGE_OUT/" 2>/dev/null
echo "== $(el) s: train.py rc=$RC"
exit $RC
