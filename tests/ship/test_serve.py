"""Serving the shipped folder: a real local server answers the OpenAI API with the model's greedy reply, then stops;
a server that dies or stays silent is reported with its log."""

import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from course_lib.ship.folder import greedy_token_ids
from course_lib.ship.serve import (
    ServerError, chat_completion, free_port, port_is_free, served_models, serving, stop, wait_until_ready,
)


def test_the_server_replies_with_the_greedy_reply_and_frees_its_port(shipped: Any) -> None:
    prompt = shipped.prompts[0]
    ids = greedy_token_ids(shipped.model, shipped.tokenizer, [prompt], shipped.max_new_tokens)[0]
    expected = shipped.tokenizer.decode(ids, skip_special_tokens=True)
    with serving(shipped.folder) as endpoint:
        port = urlsplit(endpoint.base_url).port
        assert not port_is_free(port)
        assert served_models(endpoint) == []  # transformers serve lists the hub cache, not the served folder
        messages = [{"role": "user", "content": prompt}]
        assert chat_completion(endpoint, messages, max_tokens=shipped.max_new_tokens) == expected
    assert expected.strip()
    assert port_is_free(port)


def test_a_server_that_cannot_start_is_reported_with_its_log(shipped: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServerError, match=r"(?s)exited with code .*Its log:.*address already in use"):
            with serving(shipped.folder, port=port):
                pass


def test_a_server_that_stays_silent_is_reported_after_the_timeout(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("still loading the model")
    silent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        with pytest.raises(ServerError, match=r"(?s)did not answer .* within 0.5 s.*still loading the model"):
            wait_until_ready(silent, f"http://127.0.0.1:{free_port()}/health", log, timeout=0.5)
    finally:
        stop(silent)
    assert silent.returncode == -signal.SIGTERM
