"""Run the local Triton Inference Server: ``python -m switchboard.model_server``.

PyTriton stops cleanly only on KeyboardInterrupt, so SIGTERM is turned into one.
"""

from __future__ import annotations

import logging
import shutil
import signal
import sys
from types import FrameType

from pytriton.triton import Triton, TritonConfig

from switchboard.model_server import chat, echo
from switchboard.model_server.config import Settings

logger = logging.getLogger("switchboard.model_server")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)

    chat_model = chat.ChatModel(
        settings.chat_model_path,
        settings.chat_context_tokens,
        settings.chat_threads,
        settings.chat_default_max_tokens,
    )
    shutil.rmtree(settings.workspace, ignore_errors=True)
    config = TritonConfig(
        http_address=settings.host,
        http_port=settings.http_port,
        grpc_address=settings.host,
        grpc_port=settings.grpc_port,
        metrics_address=settings.host,
        metrics_port=settings.metrics_port,
        log_verbose=settings.log_verbose,
    )
    try:
        with Triton(config=config, workspace=settings.workspace) as triton:
            echo.bind(triton)
            chat.bind(triton, settings.chat_model_name, chat_model)
            logger.info(
                "triton serving on %s (http %d, grpc %d, metrics %d)",
                settings.host,
                settings.http_port,
                settings.grpc_port,
                settings.metrics_port,
            )
            triton.serve()
    except KeyboardInterrupt:
        logger.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
