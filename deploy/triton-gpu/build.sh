#!/usr/bin/env bash
# Build the GPU model repository's TensorRT-LLM engines: INT8 weight-only and FP8.
#
# Run inside NVIDIA's Triton TensorRT-LLM container on a GPU machine, with a Hugging Face
# checkpoint of a Llama-architecture chat model (SmolLM2, Llama 3, Qwen2 …) at $CHECKPOINT:
#
#   docker run --gpus all -v $PWD/deploy/triton-gpu:/work -v /data/models:/models \
#     nvcr.io/nvidia/tritonserver:<yy.mm>-trtllm-python-py3 \
#     bash /work/build.sh /models/SmolLM2-1.7B-Instruct /models
#
# Writes $OUT/engines/{int8,fp8} and $OUT/tokenizer, the paths the model configs name.
# FP8 needs Hopper or newer (H100, H200, L40S); on older GPUs only INT8 is built.
set -euo pipefail

CHECKPOINT=${1:?usage: build.sh CHECKPOINT_DIR OUT_DIR}
OUT=${2:?usage: build.sh CHECKPOINT_DIR OUT_DIR}
MAX_BATCH=${MAX_BATCH:-64}
MAX_INPUT=${MAX_INPUT:-2048}
MAX_SEQ=${MAX_SEQ:-4096}
EXAMPLES=${TRTLLM_EXAMPLES:-/app/tensorrt_llm/examples}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

build() { # build NAME CHECKPOINT_DIR
  trtllm-build --checkpoint_dir "$2" --output_dir "$OUT/engines/$1" \
    --gemm_plugin auto --gpt_attention_plugin auto --paged_kv_cache enable --remove_input_padding enable \
    --use_paged_context_fmha enable --max_batch_size "$MAX_BATCH" --max_input_len "$MAX_INPUT" \
    --max_seq_len "$MAX_SEQ"
}

# INT8 weight-only: weights stored in INT8, activations in FP16 (any recent GPU).
python3 "$EXAMPLES/models/core/llama/convert_checkpoint.py" --model_dir "$CHECKPOINT" \
  --output_dir "$WORK/int8" --dtype float16 --use_weight_only --weight_only_precision int8
build int8 "$WORK/int8"

# FP8 weights and activations, calibrated with NVIDIA ModelOpt (Hopper and newer).
if nvidia-smi --query-gpu=compute_cap --format=csv,noheader | awk -F. '{ exit !($1 >= 9) }'; then
  python3 "$EXAMPLES/quantization/quantize.py" --model_dir "$CHECKPOINT" --dtype float16 \
    --qformat fp8 --kv_cache_dtype fp8 --output_dir "$WORK/fp8" --calib_size 256
  build fp8 "$WORK/fp8"
else
  echo "no FP8 on this GPU (compute capability < 9.0): only the INT8 engine was built" >&2
fi

mkdir -p "$OUT/tokenizer"
cp "$CHECKPOINT"/tokenizer* "$CHECKPOINT"/special_tokens_map.json "$OUT/tokenizer/" 2>/dev/null || true
cp -r "$(dirname "$0")/model_repository" "$OUT/"
echo "engines in $OUT/engines, repository in $OUT/model_repository"
