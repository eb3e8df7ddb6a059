"""Scale-out with Hugging Face Accelerate: the same LoRA fine-tuning on 1 or N processes, and the configs for more.

Data parallelism runs one copy of the model per process; each process trains on its own share of every
global batch, and the gradients are averaged across processes before every optimizer step, so N processes
× batch b take the same steps as 1 process × batch N·b. None of that is written here: ``accelerate launch``
starts the processes (torchrun), Accelerate sets up the process group (gloo on a CPU, NCCL on GPUs), shards
the batches and wraps the model in PyTorch's DistributedDataParallel, and the Trainer (TRL's SFTTrainer)
does the rest. This module only

* checks an ``accelerate`` config file with Accelerate's own loader and launch options, and that the
  machine has the processes it asks for (:func:`load_accelerate_config`, :func:`check_processes`);
* writes the launch commands (:func:`launch_command`, :func:`multi_node_commands`);
* runs the fine-tuning and collects what every rank saw (:func:`run_scale_out`), through the worker at the
  bottom of this file, ``python -m course_lib.train.scale_out``, which each launched process runs.

The shipped configs live in ``configs/accelerate`` (:data:`CONFIG_DIR`): ``cpu_ddp.yaml`` for this machine,
``fsdp.yaml``, ``deepspeed_zero3.yaml`` and ``multi_node.yaml`` for the machines a real run moves to.
"""

import argparse
import dataclasses
import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
import yaml
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.commands.launch import launch_command_parser
from accelerate.utils import DistributedType
from accelerate.utils.constants import (
    DEEPSPEED_MULTINODE_LAUNCHERS,
    FSDP2_STATE_DICT_TYPE,
    FSDP_AUTO_WRAP_POLICY,
    FSDP_BACKWARD_PREFETCH,
    FSDP_SHARDING_STRATEGY,
    FSDP_STATE_DICT_TYPE,
)
from peft import LoraConfig
from torch.distributed.elastic.multiprocessing.errors import record
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTTrainer

from course_lib.core.paths import REPO_ROOT
from course_lib.core.profiles import get_profile
from course_lib.data.chat_format import to_conversational
from course_lib.train.sft import training_config, training_losses

CONFIG_DIR = REPO_ROOT / "configs" / "accelerate"
"""The shipped ``accelerate`` config files: cpu_ddp, fsdp, deepspeed_zero3, multi_node."""

WORKER_MODULE = "course_lib.train.scale_out"
"""The module every launched process runs (``python -m``): :func:`main` below."""

ROW_INDEX = "row_index"
"""The column that carries each row's position in the file through the collator to the training step."""

# Values Accelerate accepts for options whose launch flag has no `choices`: checked here so that a typo fails
# when the file is read, not on the GPU machine at the start of training.
_ALLOWED_VALUES: dict[str, tuple[Any, ...]] = {
    "fsdp_auto_wrap_policy": tuple(FSDP_AUTO_WRAP_POLICY),
    "fsdp_state_dict_type": tuple(dict.fromkeys(FSDP_STATE_DICT_TYPE + FSDP2_STATE_DICT_TYPE)),
    "fsdp_backward_prefetch": tuple(FSDP_BACKWARD_PREFETCH),
    "fsdp_sharding_strategy": tuple(FSDP_SHARDING_STRATEGY),
    "deepspeed_multinode_launcher": tuple(DEEPSPEED_MULTINODE_LAUNCHERS),
    "zero_stage": (0, 1, 2, 3),
    "offload_optimizer_device": ("none", "cpu", "nvme"),
    "offload_param_device": ("none", "cpu", "nvme"),
}
# Options DeepSpeed reads from its own JSON file when `deepspeed_config_file` is given: Accelerate refuses both.
_DEEPSPEED_FILE_OWNS = ("gradient_accumulation_steps", "gradient_clipping", "zero_stage", "offload_optimizer_device",
                        "offload_param_device", "offload_param_nvme_path", "offload_optimizer_nvme_path",
                        "zero3_save_16bit_model")
# The nested sections of a config file and the prefix `accelerate launch` puts before their keys.
_SECTION_PREFIX = {"fsdp_config": "fsdp_", "fp8_config": "fp8_", "dynamo_config": "dynamo_", "deepspeed_config": "",
                   "mpirun_config": "", "megatron_lm_config": "", "parallelism_config": ""}


class AccelerateConfigError(ValueError):
    """An ``accelerate`` config file that Accelerate would refuse, or that this machine cannot run."""


# ---------------------------------------------------------------------------------------------------------------
# Config files: Accelerate's loader, then the checks it leaves to launch time
# ---------------------------------------------------------------------------------------------------------------

def _launch_options() -> dict[str, argparse.Action]:
    """Every option of ``accelerate launch``, by destination name: the names a config file's sections may use."""
    return {action.dest: action for action in launch_command_parser()._actions}


def _check_option(path: Path, section: str, key: str, value: Any, options: dict[str, argparse.Action]) -> None:
    """One key of a nested section: a real ``accelerate launch`` option with a value it accepts."""
    name = key if key.startswith(_SECTION_PREFIX[section]) else _SECTION_PREFIX[section] + key
    where = f"{path}: field '{section}.{key}'"
    if name not in options:
        raise AccelerateConfigError(f"{where} is not an option accelerate knows (it would be silently ignored). "
                                    f"Run `accelerate launch --help` for the options, or `accelerate config` "
                                    f"to write the file.")
    action = options[name]
    if action.type in (int, float):
        try:
            action.type(value)
        except (TypeError, ValueError):
            raise AccelerateConfigError(f"{where}: expected a number, got {value!r}.") from None
    allowed = action.choices or _ALLOWED_VALUES.get(name)  # accelerate reads these in any case (INDUCTOR, inductor)
    if allowed is not None and str(value).lower() not in {str(choice).lower() for choice in allowed}:
        raise AccelerateConfigError(f"{where}: expected one of {', '.join(map(str, allowed))}, got {value!r}.")


def load_accelerate_config(path: Path | str) -> ClusterConfig:
    """An ``accelerate`` config file read by Accelerate's own loader (what ``accelerate launch`` reads), then checked.

    Accelerate checks the top-level keys and ``distributed_type`` when it loads the file, but copies the keys
    of the nested sections (``fsdp_config``, ``deepspeed_config``, ...) to its launch options without a look:
    a misspelt key is silently ignored, a wrong value fails only when training starts, on the GPU machine.
    Here every nested key must be an ``accelerate launch`` option with a value it accepts. A
    ``distributed_type: MULTI_CPU`` file that asks for several processes per machine without an mpirun
    hostfile is refused too: ``accelerate launch`` would start a single process for it and train alone.
    Any problem is an :class:`AccelerateConfigError` that names the file and the field.
    """
    path = Path(path)
    if not path.is_file():
        raise AccelerateConfigError(f"{path}: no such accelerate config file. The shipped ones are in {CONFIG_DIR}.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise AccelerateConfigError(f"{path}: not valid YAML ({error}).") from None
    if not isinstance(raw, dict):
        raise AccelerateConfigError(f"{path}: expected a mapping of accelerate options, got {type(raw).__name__}.")
    if raw.get("compute_environment", "LOCAL_MACHINE") != "LOCAL_MACHINE":
        raise AccelerateConfigError(f"{path}: field 'compute_environment': expected LOCAL_MACHINE (your own machines); "
                                    f"got {raw['compute_environment']!r}.")
    for section in _SECTION_PREFIX:
        if raw.get(section) is not None and not isinstance(raw[section], dict):
            raise AccelerateConfigError(f"{path}: field '{section}': expected a mapping of options, "
                                        f"got {raw[section]!r}.")
    if "distributed_type" in raw and raw["distributed_type"] not in {t.value for t in DistributedType}:
        raise AccelerateConfigError(f"{path}: field 'distributed_type': expected one of "
                                    f"{', '.join(t.value for t in DistributedType)}, got {raw['distributed_type']!r}.")
    try:
        config = load_config_from_file(str(path))
    except (ValueError, TypeError) as error:  # a missing distributed_type, unknown top-level keys, wrong types
        raise AccelerateConfigError(f"{path}: accelerate cannot load it: {error}") from None
    options = _launch_options()
    for section in _SECTION_PREFIX:
        for key, value in (getattr(config, section, None) or {}).items():
            _check_option(path, section, key, value, options)
    if config.deepspeed_config.get("deepspeed_config_file"):
        clash = sorted(set(config.deepspeed_config) & set(_DEEPSPEED_FILE_OWNS))
        if clash:
            raise AccelerateConfigError(f"{path}: field 'deepspeed_config.{clash[0]}': with deepspeed_config_file, "
                                        f"set it in that DeepSpeed JSON file instead (accelerate refuses both).")
    if config.num_machines < 1 or config.num_processes == 0 or config.num_processes < -1:
        raise AccelerateConfigError(f"{path}: fields 'num_processes' and 'num_machines' must be positive, got "
                                    f"{config.num_processes} and {config.num_machines}.")
    if config.num_machines > 1 and (not config.main_process_ip or config.main_process_port is None):
        raise AccelerateConfigError(f"{path}: field 'main_process_ip': a run over {config.num_machines} machines needs "
                                    f"main_process_ip and main_process_port (the main machine's address and a port).")
    if (config.distributed_type == DistributedType.MULTI_CPU and not config.mpirun_config.get("mpirun_hostfile")
            and config.num_processes > config.num_machines):
        raise AccelerateConfigError(
            f"{path}: field 'distributed_type': MULTI_CPU without an mpirun hostfile makes `accelerate launch` start "
            f"one process per machine, not num_processes={config.num_processes}: the run would train alone. Use "
            f"distributed_type: MULTI_GPU with use_cpu: true (torchrun starts the processes, each a CPU rank on "
            f"gloo; see {CONFIG_DIR / 'cpu_ddp.yaml'}), or add mpirun_config: {{mpirun_hostfile: ...}}.")
    return config


def runs_on_cpu(config: ClusterConfig) -> bool:
    """Whether the config's processes are CPU processes (``use_cpu`` or MULTI_CPU), not one per GPU."""
    return bool(config.use_cpu) or config.distributed_type == DistributedType.MULTI_CPU


def available_processes(config: ClusterConfig) -> int:
    """How many processes of this config this machine can run: its CPU cores for a CPU config, else its GPUs.

    CPU cores are those this process may use (``os.sched_getaffinity``, which a container's CPU set limits);
    GPUs are those CUDA sees, restricted to the config's ``gpu_ids`` when it names some.
    """
    if runs_on_cpu(config):
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    visible = torch.cuda.device_count()
    if config.gpu_ids not in (None, "all"):
        wanted = [i for i in str(config.gpu_ids).split(",") if i.strip()]
        return min(len(wanted), visible)
    return visible


def processes_per_machine(config: ClusterConfig) -> int:
    """The processes ``accelerate launch`` starts on each machine: ``num_processes`` counts all machines' processes."""
    return config.num_processes // config.num_machines


def check_processes(config: ClusterConfig, path: Path | str, available: int | None = None) -> None:
    """Refuse a config that asks one machine for more processes than it has (CPU cores, or GPUs).

    ``available`` defaults to :func:`available_processes` of this machine. Oversubscribing the cores makes
    every rank wait on the others; asking for GPUs that are not there fails deep inside torchrun. The error
    names the file, ``num_processes``, what the machine has and what to do.
    """
    what = "CPU cores" if runs_on_cpu(config) else "GPUs"
    if config.num_processes == -1:
        raise AccelerateConfigError(f"{path}: field 'num_processes' is not set: write how many processes to start "
                                    f"(at most the {what} of each machine) into the file.")
    if config.num_processes % config.num_machines:
        raise AccelerateConfigError(
            f"{path}: field 'num_processes': {config.num_processes} processes do not split evenly over "
            f"num_machines={config.num_machines} (num_processes counts the processes of all machines).")
    available = available_processes(config) if available is None else available
    wanted = processes_per_machine(config)
    if wanted > available:
        per_machine = (f" ({config.num_processes} over {config.num_machines} machines = {wanted} per machine)"
                       if config.num_machines > 1 else "")
        lower = (f"Lower num_processes to at most {available * config.num_machines}, or run"
                 if available else "Run")
        raise AccelerateConfigError(
            f"{path}: field 'num_processes' asks for {wanted} processes per machine{per_machine}, but this machine "
            f"has {available or 'no'} {what}. {lower} this config on machines with at least {wanted} {what}.")


# ---------------------------------------------------------------------------------------------------------------
# Launch commands
# ---------------------------------------------------------------------------------------------------------------

def launch_command(config_path: Path | str, module: str, args: list[str], num_processes: int | None = None,
                   machine_rank: int | None = None, main_process_ip: str | None = None,
                   python: str | None = None) -> list[str]:
    """``accelerate launch --config_file … [overrides] -m module args``, as a list of arguments.

    Flags given here override the file's values (``accelerate launch`` reads the file only for what the
    command line leaves unset). With ``python`` the command starts Accelerate's CLI through that
    interpreter (``python -m accelerate.commands.accelerate_cli launch``), so the processes it starts use the
    same environment; without it, it is the ``accelerate launch`` a user types.
    """
    start = [python, "-m", "accelerate.commands.accelerate_cli"] if python else ["accelerate"]
    overrides = []
    for flag, value in (("--num_processes", num_processes), ("--machine_rank", machine_rank),
                        ("--main_process_ip", main_process_ip)):
        if value is not None:
            overrides += [flag, str(value)]
    return [*start, "launch", "--config_file", str(config_path), *overrides, "-m", module, *args]


def multi_node_commands(config_path: Path | str, module: str, args: list[str],
                        main_process_ip: str | None = None) -> list[list[str]]:
    """The command to start on each machine of a multi-machine config, machine 0 first (``--machine_rank``).

    Every machine runs the same file and script; only ``--machine_rank`` differs. Start them all within the
    rendezvous timeout; machine 0 hosts the main process at ``main_process_ip`` (the file's, or this one).
    """
    config = load_accelerate_config(config_path)
    return [launch_command(config_path, module, args, machine_rank=rank, main_process_ip=main_process_ip)
            for rank in range(config.num_machines)]


def shell_line(command: list[str]) -> str:
    """A command as one line to paste into a shell."""
    return shlex.join(command)


# ---------------------------------------------------------------------------------------------------------------
# Running a scale-out fine-tuning and reading back what every rank did
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScaleOutRun:
    """What a launched fine-tuning did: the logged loss curve and, for every rank, its loss terms and rows.

    ``losses[step]`` is the loss the Trainer logged (the mean over all ranks' tokens); ``loss_terms[rank][step]``
    is what that rank's training step returned (the Trainer logs their mean); ``rows[rank][step]`` are the ids
    of the rows that rank trained on at that step; ``peak_memory_gb[rank]`` its peak resident memory (10^9 bytes).
    ``seconds`` is the whole launch (starting the processes, loading, training); ``train_seconds`` the training
    loop alone, as the Trainer timed it on rank 0.
    """

    processes: int
    per_device_batch_size: int
    losses: list[float]
    loss_terms: list[list[float]]
    rows: list[list[list[str]]]
    peak_memory_gb: list[float]
    seconds: float
    train_seconds: float
    command: list[str]

    def rows_per_step(self) -> list[set[str]]:
        """The rows of each global batch: the union over ranks of what each trained on at that step."""
        return [set().union(*(rank[step] for rank in self.rows)) for step in range(len(self.losses))]


def _write_rows(rows: list[dict[str, Any]], path: Path) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def _read_results(output_dir: Path, processes: int) -> list[dict[str, Any]]:
    """Each rank's result file, rank 0 first; an error if a rank wrote none."""
    results = []
    for rank in range(processes):
        path = output_dir / f"rank-{rank}.json"
        if not path.is_file():
            found = sorted(p.name for p in output_dir.glob("rank-*.json"))
            raise RuntimeError(f"Rank {rank} of {processes} wrote no {path.name} (found: {found or 'none'}).")
        results.append(json.loads(path.read_text(encoding="utf-8")))
        if results[-1]["world_size"] != processes:
            raise RuntimeError(f"Rank {rank} ran in a world of {results[-1]['world_size']} processes, not {processes}: "
                               f"the launcher did not start the processes the config asks for.")
    return results


def run_scale_out(model_dir: Path | str, rows: Path | str | list[dict[str, Any]], processes: int,
                  per_device_batch_size: int, steps: int, learning_rate: float = 1e-3, seed: int = 42,
                  max_length: int = 64, lora_r: int = 8, config_path: Path | str | None = None,
                  timeout_s: float = 600.0, threads_per_process: int = 1) -> ScaleOutRun:
    """Fine-tune the model in ``model_dir`` with LoRA on ``processes`` processes, launched by ``accelerate launch``.

    ``rows`` is a JSONL file or a list of rows (prompt/completion, ``messages`` or ``text``; an ``id`` names a
    row in the result). Every process count goes through the same command, config and worker (1 process too),
    so 2 × batch b and 1 × batch 2b differ only in how the work is split. The config (``cpu_ddp.yaml`` by
    default) is checked first; ``processes`` overrides its ``num_processes``. Each process gets
    ``threads_per_process`` threads (OMP_NUM_THREADS), so the processes do not fight over the cores. A failed
    or timed-out run raises with the end of its output; the temporary files go in every case.
    """
    config_path = Path(config_path) if config_path is not None else CONFIG_DIR / "cpu_ddp.yaml"
    config = dataclasses.replace(load_accelerate_config(config_path), num_processes=processes)
    check_processes(config, config_path)
    with tempfile.TemporaryDirectory(prefix="scale-out-") as folder:
        work = Path(folder)
        if isinstance(rows, list):
            rows_path = work / "rows.jsonl"
            _write_rows(rows, rows_path)
        else:
            rows_path = Path(rows)
        worker_args = ["--model", str(model_dir), "--rows", str(rows_path), "--output", str(work / "out"),
                       "--batch-size", str(per_device_batch_size), "--steps", str(steps),
                       "--learning-rate", repr(learning_rate), "--seed", str(seed), "--max-length", str(max_length),
                       "--lora-r", str(lora_r)]
        command = launch_command(config_path, WORKER_MODULE, worker_args, num_processes=processes,
                                 python=sys.executable)
        # TMPDIR: torchrun leaves a torchelastic_* folder per run in the temporary directory; this one goes below.
        env = os.environ | {"OMP_NUM_THREADS": str(threads_per_process), "MKL_NUM_THREADS": str(threads_per_process),
                            "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1", "TMPDIR": str(work)}
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
        try:
            output, _ = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            output = _stop(process)
            raise RuntimeError(f"The scale-out run took over {timeout_s:.0f} s and was stopped: {shell_line(command)}"
                               f"\n--- last lines of its output ---\n{_tail(output)}") from None
        seconds = time.perf_counter() - start
        if process.returncode != 0:
            raise RuntimeError(f"The scale-out run failed (exit code {process.returncode}): {shell_line(command)}"
                               f"\n--- last lines of its output ---\n{_tail(output)}")
        results = _read_results(work / "out", processes)
    return ScaleOutRun(
        processes=processes, per_device_batch_size=per_device_batch_size, losses=results[0]["losses"],
        loss_terms=[r["loss_terms"] for r in results], rows=[r["rows"] for r in results],
        peak_memory_gb=[r["peak_memory_gb"] for r in results], seconds=seconds,
        train_seconds=results[0]["train_seconds"], command=command,
    )


def _stop(process: subprocess.Popen) -> str:
    """Stop a launch and return its output: SIGTERM first, which torchrun's agent passes on to every rank it
    started (each in a session of its own), then SIGKILL to the launcher's session if it has not ended in 30 s."""
    process.terminate()
    try:
        return process.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.communicate()[0]


def _tail(output: str, lines: int = 40) -> str:
    return "\n".join((output or "").splitlines()[-lines:])


def loss_curve_gap(a: list[float], b: list[float]) -> float:
    """The largest absolute difference between two loss curves, step by step; they must have the same length."""
    if len(a) != len(b) or not a:
        raise ValueError(f"Loss curves of {len(a)} and {len(b)} steps cannot be compared step by step.")
    return max(abs(x - y) for x, y in zip(a, b))


# ---------------------------------------------------------------------------------------------------------------
# The worker: what every launched process runs
# ---------------------------------------------------------------------------------------------------------------

def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file, each an object; an error names the file and line."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {number}: not valid JSON ({error.msg}).") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}.")
        rows.append(row)
    return rows


def training_example(row: dict[str, Any], index: int) -> dict[str, Any]:
    """A row in a format SFTTrainer reads, with its position in the file under :data:`ROW_INDEX`.

    Prompt/completion rows become conversational prompt-completion (loss on the answer only), ``messages``
    and ``text`` rows pass as they are; other fields are dropped.
    """
    if "prompt" in row and "completion" in row:
        example = to_conversational(row)
    elif "messages" in row:
        example = {"messages": row["messages"]}
    elif "text" in row:
        example = {"text": row["text"]}
    else:
        raise ValueError(f"Row {index} has none of prompt+completion, messages or text: {sorted(row)}.")
    return example | {ROW_INDEX: index}


class RowIndexCollator:
    """The trainer's own collator, plus a tensor of the batch's :data:`ROW_INDEX` values under the same key."""

    def __init__(self, collator: Any) -> None:
        self.collator = collator

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        indices = torch.tensor([example[ROW_INDEX] for example in examples])
        batch = self.collator([{k: v for k, v in example.items() if k != ROW_INDEX} for example in examples])
        return batch | {ROW_INDEX: indices}


class RowRecordingTrainer(SFTTrainer):
    """SFTTrainer that records, at every training step, the rows this rank trained on and the loss it returned.

    The rows come through the batch (:class:`RowIndexCollator`) and are taken out before the model sees it:
    they are what the engine's sampler and batch sharding gave this rank, not a prediction of it.
    One record per optimizer step assumes no gradient accumulation.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.data_collator = RowIndexCollator(self.data_collator)
        self.rows_per_step: list[list[int]] = []
        self.loss_terms: list[float] = []

    def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor:
        self.rows_per_step.append(inputs.pop(ROW_INDEX).tolist())
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.loss_terms.append(loss.item())
        return loss


def train_rank(model_dir: str, rows_path: Path, output_dir: Path, batch_size: int, steps: int, learning_rate: float,
               seed: int, max_length: int, lora_r: int) -> dict[str, Any]:
    """One process's part of the run: LoRA fine-tuning with SFTTrainer; returns (and writes) what this rank did.

    Accelerate tells the Trainer how many processes there are; the rows are cut to whole global batches
    (per-device batch × processes) so every step of every run sees full batches. Dropout is off (LoRA's,
    and the models' attention dropout is 0), so the runs differ only by how the batch is split.

    With ``average_tokens_across_devices`` the Trainer counts the loss tokens of all ranks; each rank's loss
    is its own tokens' summed loss over that count, times the number of processes. DDP averages the
    gradients over the processes and the Trainer logs the mean of the ranks' losses (an all-gather), so
    both the update and the logged loss are those of the whole global batch, as in one process.
    """
    rows = read_rows(rows_path)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    global_batch = batch_size * world_size
    if len(rows) < global_batch:
        raise ValueError(f"{rows_path}: {len(rows)} rows, fewer than one global batch ({batch_size} × {world_size}).")
    rows = rows[:len(rows) - len(rows) % global_batch]
    data = datasets.Dataset.from_list([training_example(row, i) for i, row in enumerate(rows)])
    profile = get_profile("cpu" if not torch.cuda.is_available() else "gpu").with_overrides(
        train_steps=steps, train_batch_size=batch_size, max_seq_length=max_length, seed=seed)
    config = training_config(output_dir / "trainer", profile, learning_rate=learning_rate, disable_tqdm=True,
                             remove_unused_columns=False, gradient_accumulation_steps=1,
                             average_tokens_across_devices=True,
                             ddp_find_unused_parameters=False)  # every LoRA weight gets a gradient
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16 if config.bf16 else torch.float32)
    lora = LoraConfig(r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.0, task_type="CAUSAL_LM")
    trainer = RowRecordingTrainer(model=model, args=config, processing_class=tokenizer, train_dataset=data,
                                  peft_config=lora)
    metrics = trainer.train().metrics
    ids = [str(row.get("id", i)) for i, row in enumerate(rows)]
    result = {
        "rank": trainer.args.process_index, "world_size": trainer.args.world_size,
        "losses": training_losses(trainer.state.log_history), "loss_terms": trainer.loss_terms,
        "rows": [[ids[i] for i in step] for step in trainer.rows_per_step],
        "train_seconds": metrics["train_runtime"],
        "peak_memory_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 2),  # ru_maxrss: KiB
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / f"rank-{result['rank']}.json").write_text(json.dumps(result), encoding="utf-8")
    # No accelerator.end_training(): on gloo its destroy_process_group() hung at exit in about 2 runs of 5 here
    # (torch 2.13); the process group closes with the process.
    return result


@record
def main(argv: list[str] | None = None) -> None:
    """The worker's command line (what ``accelerate launch -m course_lib.train.scale_out`` runs in each process).

    ``@record`` (torchrun's) hands a failing rank's exception to the launcher, which prints it in its summary.
    """
    parser = argparse.ArgumentParser(description="One process of a data-parallel LoRA fine-tuning.")
    parser.add_argument("--model", required=True, help="folder of a causal LM and its tokenizer")
    parser.add_argument("--rows", required=True, type=Path, help="JSONL rows: prompt+completion, messages or text")
    parser.add_argument("--output", required=True, type=Path, help="folder for each rank's rank-N.json")
    parser.add_argument("--batch-size", type=int, default=2, help="rows per process per step")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--lora-r", type=int, default=8)
    args = parser.parse_args(argv)
    train_rank(args.model, args.rows, args.output, args.batch_size, args.steps, args.learning_rate, args.seed,
               args.max_length, args.lora_r)


if __name__ == "__main__":
    main()
