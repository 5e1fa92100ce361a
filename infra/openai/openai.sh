# An OpenAI-compatible endpoint (llama-cpp-python's server, the same local GGUF model):
# the inference client's last fallback, the way a hosted API would be in production.
# The API key is a local secret, passed in the environment and on standard input, never on a command line.
# shellcheck shell=bash

openai_start() {
  (export API_KEY && API_KEY=$(secret openai-api-key) && start_daemon openai "$SB_ROOT/.venv/bin/python" -m llama_cpp.server \
    --model "${SB_TRITON_CHAT_MODEL_PATH:-$MODELS_HOME/$SB_CHAT_MODEL_FILE}" --model_alias smollm2 \
    --host 127.0.0.1 --port "$SB_OPENAI_PORT" --n_ctx 2048 --n_threads 1)
  wait_ready openai 120 openai_ready
}

openai_ready() { # the header from standard input, not the command line
  curl -fsS -H @- "http://127.0.0.1:$SB_OPENAI_PORT/v1/models" <<<"Authorization: Bearer $(secret openai-api-key)" >/dev/null
}

openai_health() { openai_ready && echo "model smollm2 served at http://127.0.0.1:$SB_OPENAI_PORT/v1"; }

openai_ports() { echo SB_OPENAI_PORT; }

openai_stop() { stop_daemon openai TERM 20; }
