#!/usr/bin/env bash
# Every figure issue 12's "Must show" asks for, in one go, on an IDLE machine (another process on the host
# slows one side more than the other: run it when nothing else runs).
#
#   bash scripts/issue12_figures.sh          # full: rewrites docs/benchmarks.md and docs/whole_process.md
#   bash scripts/issue12_figures.sh --avx2   # the same with ONEDNN_MAX_CPU_ISA=AVX2: this CPU computing as an
#                                            # AVX2-only one (rows named so; the pages keep every kind's rows)
#   bash scripts/issue12_figures.sh --avx2-vnni  # ... capped to AVX2 with AVX-VNNI (Intel laptops since 2021)
#   bash scripts/issue12_figures.sh --tiny   # a few minutes: checks that everything runs, writes under /tmp
#
# 0. python -m core.tools.engine_choice: every candidate engine's bare pass, int8's set-up and break-even.
# 1. python -m core.tools.whole_process: the lecture's code against `python -m core train` for
#    feature_extraction and feature_extraction_aug, whole processes, 1000 training / 500 validation real photos
#    of ../shared, VGG16 weights from ../shared/weights, 1 epoch, 150 px.
# 2. python -m core bench (full): the goal table with its host line, every ceiling (TensorFlow float32 and
#    bfloat16, OpenVINO float32, bfloat16 and int8), the accuracy cost of the auto precision on MobileNetV2 features
#    (2000 training / 1000 validation real photos, float32 and auto side by side), on 1000 photos (feature
#    extraction) and 400 (fine-tuning and augmented epochs, two epochs each, the second timed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export TF_CPP_MIN_LOG_LEVEL=3
if [[ "${1:-}" == "--avx2" ]]; then
  export ONEDNN_MAX_CPU_ISA=AVX2
  shift
elif [[ "${1:-}" == "--avx2-vnni" ]]; then
  export ONEDNN_MAX_CPU_ISA=AVX2_VNNI
  shift
fi
if [[ "${1:-}" == "--tiny" ]]; then
  echo "tiny mode: about 3 minutes on an idle 2-core AMX host (a check that it runs; the figures mean nothing)"
  $PY -m core.tools.whole_process --train 40 --validation 20 --markdown /tmp/issue12_whole_process_tiny.md
  $PY -m core bench --quick --markdown /tmp/issue12_benchmarks_tiny.md
  exit 0
fi
cat <<'TXT'
Estimated runtime on an idle 2-core AMX host: about 19 minutes in all
  whole processes (8 runs, each side twice, alternating: 1500 images through VGG16 in float32 at ~20 img/s,
    the engine at ~100 img/s, eight Python/TensorFlow start-ups): ~9-10 minutes
  python -m core bench (full): ~9 minutes (reference extraction of 1000 images ~1 min, ceilings with the
    OpenVINO conversion and int8 quantization ~2 min, fine-tuning and augmented epochs on 400 photos ~3 min,
    MobileNetV2 on 3000 photos in two precisions ~1.5 min, memory probes ~1 min)
On an AVX2-only host (or this one capped with --avx2) about 40 minutes: the capped run of 2026-11-29 took 23
minutes with the whole processes run once each.
TXT
echo "start: $(date -u +%H:%M:%S) UTC, load average $(cut -d' ' -f1-3 /proc/loadavg)"
KIND=$($PY -c "import re; from core.models import precision; print(re.sub('[^a-z0-9]+', '-', precision.host()['kind'].lower()).strip('-'))")
mkdir -p docs/engine-choice-results
{ echo "# $(date -u +%F) \`python -m core.tools.engine_choice\`${ONEDNN_MAX_CPU_ISA:+ with ONEDNN_MAX_CPU_ISA=$ONEDNN_MAX_CPU_ISA}"
  $PY -m core.tools.engine_choice 2>/dev/null | grep -v '^[ {}]'; } | tee "docs/engine-choice-results/$KIND.txt"
$PY -m core.tools.whole_process --repeat 2 --markdown docs/whole_process.md
echo "whole processes done: $(date -u +%H:%M:%S) UTC"
$PY -m core bench --markdown docs/benchmarks.md
echo "end: $(date -u +%H:%M:%S) UTC, load average $(cut -d' ' -f1-3 /proc/loadavg)"
