# The object store: where voice notes, images and spoken replies are kept, so that Kafka
# events carry only a reference and a content hash (claim check, docs/media.md). It is
# Versity's S3 gateway (versitygw, Apache 2.0) over a folder: the S3 API on
# http://127.0.0.1:$SB_OBJECTSTORE_PORT, each bucket a directory under .state/objectstore,
# each object a file. Why versitygw: one small binary built from its Go module in about 1.5
# minutes (MinIO took 4, rclone 7, and neither has a tagged module version for Go), plain
# files a developer can look at, and the same S3 calls a cluster's store answers.
# Root credentials: access key $SB_OBJECTSTORE_ACCESS_KEY, secret .state/secrets/objectstore
# (passed in the environment, never on the command line).
# shellcheck shell=bash

OBJECTSTORE_HOME=$SB_STATE/objectstore
OBJECTSTORE_BIN=$SB_CACHE/versitygw-$SB_VERSITYGW_VERSION/versitygw

objectstore_install() {
  go_build_once objectstore github.com/versity/versitygw/cmd/versitygw "$SB_VERSITYGW_VERSION" "$OBJECTSTORE_BIN" 2
}

objectstore_start() {
  own_dir "$OBJECTSTORE_HOME"
  # A copy beside its data: the run user may not reach $SB_CACHE (a home directory).
  cp -f "$OBJECTSTORE_BIN" "$OBJECTSTORE_HOME/versitygw"
  mkdir -p "$OBJECTSTORE_HOME/data/$SB_MEDIA_BUCKET"  # a bucket is a directory
  if as_root; then chown -R "$SB_RUN_USER:" "$OBJECTSTORE_HOME"; fi
  (
    export ROOT_ACCESS_KEY_ID=$SB_OBJECTSTORE_ACCESS_KEY ROOT_SECRET_ACCESS_KEY
    ROOT_SECRET_ACCESS_KEY=$(secret objectstore)
    export VGW_PORT=127.0.0.1:$SB_OBJECTSTORE_PORT VGW_HEALTH=/health
    start_daemon objectstore "${RUN_AS[@]}" "$OBJECTSTORE_HOME/versitygw" posix "$OBJECTSTORE_HOME/data"
  )
  wait_ready objectstore 30 objectstore_ready
}

objectstore_ready() { curl -fsS "http://127.0.0.1:$SB_OBJECTSTORE_PORT/health" >/dev/null; }

objectstore_health() { objectstore_ready && echo "http://127.0.0.1:$SB_OBJECTSTORE_PORT (bucket $SB_MEDIA_BUCKET)"; }

objectstore_ports() { echo SB_OBJECTSTORE_PORT; }

objectstore_stop() { stop_daemon objectstore TERM 20; }
