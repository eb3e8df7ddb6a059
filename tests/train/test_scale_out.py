"""Scale-out with Accelerate: 2 processes × batch b train like 1 process × batch 2b; the shipped configs load and say
what they claim; a config that asks for more processes than the machine has fails with a clear message."""

import json
import random
import shutil
import tempfile
from pathlib import Path

import psutil
import pytest
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DistributedType
from transformers.models.llama import modeling_llama

from course_lib.model.toy import tiny_llama, word_tokenizer
from course_lib.train.scale_out import (
    CONFIG_DIR,
    WORKER_MODULE,
    AccelerateConfigError,
    ScaleOutRun,
    available_processes,
    check_processes,
    launch_command,
    load_accelerate_config,
    loss_curve_gap,
    multi_node_commands,
    processes_per_machine,
    run_scale_out,
)

BATCH = 2  # per process in the 2-process run; the 1-process run takes 2 × BATCH
STEPS = 5
LEARNING_RATE = 1e-2  # large enough for the loss to move well beyond the tolerance within STEPS
# Float32 carries about 7 significant digits: at a loss of ~3.4 one unit in the last place is 2.4e-7. The two runs
# add the same numbers in a different order (each rank's padding gives other matrix shapes; the loss and the
# gradients are summed per rank, then across ranks by gloo), so they may differ by a few such units, and Adam carries
# that into the next steps. Measured: 4.8e-7 over 5 steps. 1e-5 leaves 20x room for other CPUs' kernels, and is
# still 1000x smaller than one step's change of the loss or the gap between the two ranks' own losses (asserted).
TOLERANCE = 1e-5
WORDS = "what is the price of tuna salmon eel rice miso soup roll it costs five six seven eight euros".split()


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny random Llama with a word tokenizer saved as a folder, and 24 prompt/completion rows of varied lengths."""
    folder = tmp_path_factory.mktemp("scale-out")
    tokenizer = word_tokenizer(WORDS)
    tiny_llama(tokenizer, seed=0).save_pretrained(folder / "model", safe_serialization=True)
    tokenizer.save_pretrained(folder / "model")
    rng = random.Random(0)
    rows = [{"id": f"row-{i:02d}", "prompt": f"what is the price of {rng.choice(WORDS[5:12])}",
             "completion": " ".join(["it costs", rng.choice(WORDS[14:18]), "euros"][:1 + i % 3])} for i in range(24)]
    (folder / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    yield {"model": folder / "model", "rows": folder / "rows.jsonl"}
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def runs(toy: dict[str, Path]) -> tuple[ScaleOutRun, ScaleOutRun]:
    """The same fine-tuning launched by accelerate as 2 processes × BATCH and as 1 process × 2·BATCH."""
    two = run_scale_out(toy["model"], toy["rows"], processes=2, per_device_batch_size=BATCH, steps=STEPS,
                        learning_rate=LEARNING_RATE)
    one = run_scale_out(toy["model"], toy["rows"], processes=1, per_device_batch_size=2 * BATCH, steps=STEPS,
                        learning_rate=LEARNING_RATE)
    return two, one


def test_two_processes_follow_the_single_process_loss_curve(runs: tuple[ScaleOutRun, ScaleOutRun]) -> None:
    two, one = runs
    assert len(two.losses) == len(one.losses) == STEPS
    assert len(two.loss_terms) == 2 and len(one.loss_terms) == 1
    assert loss_curve_gap(two.losses, one.losses) < TOLERANCE
    # The curves cover training, not one forward pass repeated: the loss moves by far more than the tolerance.
    assert max(abs(a - b) for a, b in zip(one.losses, one.losses[1:])) > 1000 * TOLERANCE


def test_the_logged_loss_is_the_mean_over_ranks_not_one_ranks_loss(runs: tuple[ScaleOutRun, ScaleOutRun]) -> None:
    two, one = runs
    for step in range(STEPS):
        terms = [rank[step] for rank in two.loss_terms]
        assert sum(terms) / 2 == pytest.approx(two.losses[step], abs=1e-6)
    # Each rank's own number is far from the global one: matching the single process needs the all-gather.
    assert max(abs(a - b) for a, b in zip(*two.loss_terms)) > 1000 * TOLERANCE
    assert one.loss_terms[0] == pytest.approx(one.losses, abs=1e-6)


def test_each_rank_trains_on_its_own_rows_and_together_on_the_single_process_batch(
        runs: tuple[ScaleOutRun, ScaleOutRun]) -> None:
    two, one = runs
    assert all(len(rank) == STEPS for rank in two.rows) and len(one.rows[0]) == STEPS
    for step in range(STEPS):
        first, second = (set(rank[step]) for rank in two.rows)
        assert len(first) == len(second) == BATCH
        assert not first & second, f"step {step}: both ranks trained on {first & second}"
        assert first | second == set(one.rows[0][step])
    assert two.rows_per_step() == one.rows_per_step()
    assert len({frozenset(batch) for batch in one.rows_per_step()}) == STEPS  # a new global batch at every step


def test_a_failing_rank_raises_with_its_error_and_leaves_no_temporary_files(
        toy: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"id": str(i), "question": "no answer"}) + "\n" for i in range(4)))
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))  # here, and for the processes the run starts
    monkeypatch.setenv("TMPDIR", str(temporary))
    with pytest.raises(RuntimeError) as error:
        run_scale_out(toy["model"], rows, processes=2, per_device_batch_size=1, steps=1, timeout_s=300)
    assert "failed (exit code 1)" in str(error.value)
    assert "ValueError: Row 0 has none of prompt+completion, messages or text: ['id', 'question']" in str(error.value)
    assert list(temporary.iterdir()) == []  # the run's folder, and torchrun's torchelastic_* inside it, are gone


def test_a_run_over_its_time_is_stopped_with_every_rank_it_started(toy: dict[str, Path], tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"  # a path of this test's own, to find its processes by
    shutil.copy(toy["rows"], rows)
    with pytest.raises(RuntimeError, match="took over 6 s and was stopped"):
        run_scale_out(toy["model"], rows, processes=2, per_device_batch_size=2, steps=3, timeout_s=6)
    left = [p.pid for p in psutil.process_iter(["cmdline"]) if str(rows) in " ".join(p.info["cmdline"] or [])]
    assert left == []


# --- the shipped config files ------------------------------------------------------------------------------------

def _launch_args(path: Path) -> object:
    """What `accelerate launch` makes of the file: its own parser and checks, up to the point of starting processes."""
    args = launch_command_parser().parse_args(["--config_file", str(path), "-m", WORKER_MODULE])
    return _validate_launch_command(args)[0]


def test_the_shipped_configs_are_the_four_the_lesson_explains() -> None:
    assert sorted(p.name for p in CONFIG_DIR.glob("*.yaml")) == [
        "cpu_ddp.yaml", "deepspeed_zero3.yaml", "fsdp.yaml", "multi_node.yaml"]
    for path in CONFIG_DIR.glob("*.yaml"):
        assert path.read_text().startswith("# "), f"{path.name} starts without a comment saying when to use it"


def test_cpu_ddp_starts_two_cpu_processes_through_torchrun() -> None:
    path = CONFIG_DIR / "cpu_ddp.yaml"
    config = load_accelerate_config(path)
    assert (config.distributed_type, config.use_cpu, config.num_processes, config.num_machines) == (
        DistributedType.MULTI_GPU, True, 2, 1)
    args = _launch_args(path)
    assert args.multi_gpu and not args.cpu and args.num_processes == 2  # accelerate's branch to torchrun
    check_processes(config, path, available=2)


def test_fsdp_shards_fully_per_decoder_block_on_eight_gpus() -> None:
    path = CONFIG_DIR / "fsdp.yaml"
    config = load_accelerate_config(path)
    assert (config.distributed_type, config.num_processes, config.num_machines, config.use_cpu) == (
        DistributedType.FSDP, 8, 1, False)
    fsdp = config.fsdp_config
    assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_reshard_after_forward"] is True  # FSDP2's FULL_SHARD
    assert fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fsdp["fsdp_state_dict_type"] in ("SHARDED_STATE_DICT", "FULL_STATE_DICT")
    assert hasattr(modeling_llama, fsdp["fsdp_transformer_layer_cls_to_wrap"])  # SmolLM2 is a Llama
    args = _launch_args(path)
    assert args.use_fsdp and args.fsdp_version == 2 and args.mixed_precision == "bf16"


def test_deepspeed_config_asks_for_zero_stage_3_on_eight_gpus() -> None:
    path = CONFIG_DIR / "deepspeed_zero3.yaml"
    config = load_accelerate_config(path)
    assert (config.distributed_type, config.num_processes, config.num_machines) == (DistributedType.DEEPSPEED, 8, 1)
    assert config.deepspeed_config["zero_stage"] == 3 and config.deepspeed_config["zero3_init_flag"] is True
    args = _launch_args(path)
    assert args.use_deepspeed and args.zero_stage == 3


def test_multi_node_config_runs_eight_processes_on_each_of_two_machines() -> None:
    path = CONFIG_DIR / "multi_node.yaml"
    config = load_accelerate_config(path)
    assert (config.distributed_type, config.num_machines, config.num_processes, config.machine_rank) == (
        DistributedType.MULTI_GPU, 2, 16, 0)
    assert config.main_process_ip and isinstance(config.main_process_port, int)
    assert processes_per_machine(config) == 8
    check_processes(config, path, available=8)


# --- configs that must fail, with a message that says what to do -----------------------------------------------

def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


def test_more_processes_than_cpu_cores_is_refused_with_what_the_machine_has(tmp_path: Path) -> None:
    path = _config(tmp_path, (CONFIG_DIR / "cpu_ddp.yaml").read_text().replace("num_processes: 2", "num_processes: 64"))
    config = load_accelerate_config(path)
    cores = available_processes(config)
    with pytest.raises(AccelerateConfigError) as error:
        check_processes(config, path)
    assert str(error.value) == (
        f"{path}: field 'num_processes' asks for 64 processes per machine, but this machine has {cores} CPU cores. "
        f"Lower num_processes to at most {cores}, or run this config on machines with at least 64 CPU cores.")


def test_a_gpu_config_counts_gpus_and_a_multi_node_config_counts_per_machine() -> None:
    fsdp, multi_node = CONFIG_DIR / "fsdp.yaml", CONFIG_DIR / "multi_node.yaml"
    with pytest.raises(AccelerateConfigError, match=r"asks for 8 processes per machine, but this machine has 4 GPUs"):
        check_processes(load_accelerate_config(fsdp), fsdp, available=4)
    with pytest.raises(AccelerateConfigError, match=r"\(16 over 2 machines = 8 per machine\), but this machine has "
                                                    r"4 GPUs\. Lower num_processes to at most 8"):
        check_processes(load_accelerate_config(multi_node), multi_node, available=4)
    with pytest.raises(AccelerateConfigError, match=r"this machine has no GPUs\. Run this config on machines with at "
                                                    r"least 8 GPUs\.$"):
        check_processes(load_accelerate_config(fsdp), fsdp, available=0)


def test_run_scale_out_refuses_more_processes_than_cores_before_launching(toy: dict[str, Path]) -> None:
    cores = available_processes(load_accelerate_config(CONFIG_DIR / "cpu_ddp.yaml"))
    with pytest.raises(AccelerateConfigError, match=f"asks for {cores + 1} processes per machine, but this machine "
                                                    f"has {cores} CPU cores"):
        run_scale_out(toy["model"], toy["rows"], processes=cores + 1, per_device_batch_size=1, steps=1)


@pytest.mark.parametrize("change, message", [
    (("fsdp_state_dict_type: SHARDED_STATE_DICT", "fsdp_state_dict_typ: SHARDED_STATE_DICT"),
     "field 'fsdp_config.fsdp_state_dict_typ' is not an option accelerate knows"),
    (("fsdp_state_dict_type: SHARDED_STATE_DICT", "fsdp_state_dict_type: SHARDED"),
     "field 'fsdp_config.fsdp_state_dict_type': expected one of FULL_STATE_DICT, LOCAL_STATE_DICT, SHARDED_STATE_DICT"),
    (("distributed_type: FSDP", "distributed_type: FSPD"), "field 'distributed_type': expected one of"),
    (("num_machines: 1", "num_machine: 1"), "had unknown keys (['num_machine'])"),
    (("distributed_type: FSDP", "distributed_type: MULTI_CPU"), "field 'distributed_type': MULTI_CPU without an "
                                                               "mpirun hostfile makes `accelerate launch` start one"),
    (("mixed_precision: bf16", "mixed_precision: bf16\nfsdp_config: [1, 2]"), "fsdp_config"),
])
def test_a_broken_config_names_the_file_and_the_field(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = (CONFIG_DIR / "fsdp.yaml").read_text()
    assert change[0] in text
    path = _config(tmp_path, text.replace(change[0], change[1]))
    with pytest.raises(AccelerateConfigError) as error:
        load_accelerate_config(path)
    assert str(error.value).startswith(str(path)) and message in str(error.value)


def test_deepspeed_options_next_to_a_deepspeed_json_file_are_refused(tmp_path: Path) -> None:
    text = (CONFIG_DIR / "deepspeed_zero3.yaml").read_text()
    path = _config(tmp_path, text.replace("deepspeed_config:\n",
                                          "deepspeed_config:\n  deepspeed_config_file: ds.json\n"))
    with pytest.raises(AccelerateConfigError, match=r"deepspeed_config\.gradient_accumulation_steps': with "
                                                    r"deepspeed_config_file, set it in that DeepSpeed JSON file"):
        load_accelerate_config(path)


# --- launch commands ---------------------------------------------------------------------------------------------

def test_launch_command_is_what_a_user_types_and_accelerate_reads_it_back() -> None:
    path = CONFIG_DIR / "cpu_ddp.yaml"
    command = launch_command(path, WORKER_MODULE, ["--steps", "3"], num_processes=1)
    assert command == ["accelerate", "launch", "--config_file", str(path), "--num_processes", "1",
                       "-m", WORKER_MODULE, "--steps", "3"]
    args = launch_command_parser().parse_args(command[2:])
    assert (args.module, args.training_script, args.training_script_args, args.num_processes) == (
        True, WORKER_MODULE, ["--steps", "3"], 1)
    assert launch_command(path, "m", [], python="/venv/python")[:4] == [
        "/venv/python", "-m", "accelerate.commands.accelerate_cli", "launch"]


def test_multi_node_commands_differ_only_in_the_machine_rank() -> None:
    path = CONFIG_DIR / "multi_node.yaml"
    commands = multi_node_commands(path, WORKER_MODULE, ["--steps", "3"], main_process_ip="192.168.0.7")
    assert len(commands) == 2
    for rank, command in enumerate(commands):
        args = launch_command_parser().parse_args(command[2:])
        assert (args.config_file, args.machine_rank, args.main_process_ip, args.training_script) == (
            str(path), rank, "192.168.0.7", WORKER_MODULE)
    assert [c for c in commands[0] if c not in commands[1]] == ["0"]


def test_loss_curve_gap_is_the_largest_step_difference_and_refuses_unequal_curves() -> None:
    assert loss_curve_gap([3.0, 2.5, 2.0], [3.0, 2.25, 2.125]) == 0.25
    with pytest.raises(ValueError, match="3 and 2 steps"):
        loss_curve_gap([1.0, 2.0, 3.0], [1.0, 2.0])
