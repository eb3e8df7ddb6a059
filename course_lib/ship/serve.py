"""Serving the shipped folder the way users call models: an OpenAI-compatible endpoint on localhost.

The server is ``transformers serve`` (transformers' own FastAPI/uvicorn app,
``pip install transformers[serving]``), pinned to the folder: it loads the
model before it answers, decodes with the folder's ``generation_config.json``
(greedy) and speaks the OpenAI chat-completions API, so any OpenAI client
talks to it. :func:`serving` starts it as a child process in its own process
group, waits until it answers, and always stops it; :func:`chat_completion`
is the request every OpenAI-compatible service takes.

Two behaviours of ``transformers serve`` to know: requests name the model
as the server was started (here the folder's path, :attr:`Endpoint.model`),
and ``GET /v1/models`` lists the models of the Hugging Face hub cache, not a
served local folder; the server is given an empty cache of its own, so that
list is empty rather than an error.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import torch
from openai import OpenAI

from course_lib.data.chat_format import Messages
from course_lib.ship.folder import check_model_folder

START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 15.0
REQUEST_TIMEOUT_S = 120.0
POLL_INTERVAL_S = 0.2
LOG_TAIL_CHARS = 3000


class ServerError(RuntimeError):
    """The model server died or did not answer in time (the message ends with its log)."""


@dataclass(frozen=True)
class Endpoint:
    """A running server: the OpenAI base URL (``http://127.0.0.1:PORT/v1``) and the model name requests use."""

    base_url: str
    model: str


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_is_free(port: int) -> bool:
    """True when a server could bind ``port`` on 127.0.0.1 now: nothing is left listening there.

    Binds as servers do (SO_REUSEADDR), so closed connections still in TIME_WAIT don't count as taken.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def serve_command(folder: Path, port: int, device: str) -> list[str]:
    """``transformers serve`` pinned to ``folder`` on 127.0.0.1:``port``, run by this Python (same environment)."""
    return [sys.executable, "-m", "transformers.cli.transformers", "serve", str(folder),
            "--host", "127.0.0.1", "--port", str(port), "--device", device, "--dtype", "auto",
            "--log-level", "warning"]


def _log_tail(log: Path) -> str:
    """The end of the server's log, for an error message."""
    return log.read_text(errors="replace")[-LOG_TAIL_CHARS:] if log.exists() else "(no log)"


def _answers(url: str) -> bool:
    """True when ``url`` answers 200 right now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def wait_until_ready(process: subprocess.Popen, health_url: str, log: Path, timeout: float) -> None:
    """Poll ``health_url`` until the server answers; a clear error with its log if it exits or stays silent."""
    deadline = time.monotonic() + timeout
    while not _answers(health_url):
        if process.poll() is not None:
            raise ServerError(f"The model server exited with code {process.returncode} before answering. "
                              f"Its log:\n{_log_tail(log)}")
        if time.monotonic() > deadline:
            raise ServerError(f"The model server did not answer {health_url} within {timeout:g} s: pass a larger "
                              f"timeout (a slow machine, a big model). Its log:\n{_log_tail(log)}")
        time.sleep(POLL_INTERVAL_S)


def stop(process: subprocess.Popen) -> None:
    """Stop the server and everything it started: SIGTERM to its process group, SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    with suppress(ProcessLookupError):  # it may exit between the check and the signal
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextmanager
def serving(folder: Path | str, port: int | None = None, device: str = "cpu",
            timeout: float = START_TIMEOUT_S) -> Iterator[Endpoint]:
    """Serve a shipped folder with ``transformers serve`` while the ``with`` block runs; yields its :class:`Endpoint`.

    The server runs fully offline (the environment's HF_HUB_OFFLINE), with as
    many CPU threads as this process (so it decodes exactly as the model in
    memory does), in its own process group, logging to a temporary file
    that is removed with it. On leaving the block, normally or by an error,
    the server is stopped and its port freed.
    """
    folder = check_model_folder(folder).resolve()
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="course-serve-") as scratch:
        log, hub_cache = Path(scratch) / "server.log", Path(scratch) / "hub-cache"
        hub_cache.mkdir()
        env = os.environ | {"HF_HUB_CACHE": str(hub_cache), "HF_HUB_DISABLE_UPDATE_CHECK": "1",
                            "OMP_NUM_THREADS": str(torch.get_num_threads())}
        with log.open("w") as log_file:
            process = subprocess.Popen(serve_command(folder, port, device), stdin=subprocess.DEVNULL,
                                       stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            wait_until_ready(process, f"http://127.0.0.1:{port}/health", log, timeout)
            yield Endpoint(f"http://127.0.0.1:{port}/v1", str(folder))
        finally:
            stop(process)


def client(endpoint: Endpoint) -> OpenAI:
    """An OpenAI client for the local server (no API key is checked; no retries, so errors show at once)."""
    return OpenAI(base_url=endpoint.base_url, api_key="local", max_retries=0, timeout=REQUEST_TIMEOUT_S)


def served_models(endpoint: Endpoint) -> list[str]:
    """The model ids ``GET /v1/models`` lists (for ``transformers serve``: the hub cache's models)."""
    return [model.id for model in client(endpoint).models.list().data]


def chat_completion(endpoint: Endpoint, messages: Messages, max_tokens: int) -> str:
    """The server's reply to a conversation (``POST /v1/chat/completions``), at most ``max_tokens`` tokens long."""
    response = client(endpoint).chat.completions.create(model=endpoint.model, messages=messages,
                                                         max_tokens=max_tokens)
    return response.choices[0].message.content or ""
