"""Profiles: the knobs every lesson reads, sized for the machine it runs on.

A lesson never hard-codes how many steps to train or how many examples to
evaluate: it reads them from the profile, so the same notebook runs in
minutes on a 2-core laptop (``cpu``) and trains longer and larger on a GPU
(``gpu``) by changing parameters only.
"""

from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Profile:
    """The knobs a lesson reads. Any of them can be overridden by notebook parameters."""

    name: str
    model_name: str
    device: str
    dtype: str
    num_threads: int
    seed: int
    train_steps: int
    train_batch_size: int
    eval_batch_size: int
    max_seq_length: int
    max_new_tokens: int
    num_eval_examples: int
    num_facts: int  # Sakura facts a fine-tuning run teaches and tests (balanced by kind; 153 is all of them)
    sft_epochs: int  # passes over the taught facts' rows that build the course's shared fine-tuned model
    load_in_4bit: bool
    checkpoint_every: int  # training steps between resumable checkpoints of cached models; 0: none

    def with_overrides(self, **overrides: Any) -> "Profile":
        """A copy with some knobs changed; an unknown knob or a wrong type is an error."""
        known = {f.name: f.type for f in fields(self)}
        for knob, value in overrides.items():
            if knob not in known:
                raise ValueError(
                    f"Unknown profile knob '{knob}'. Known knobs: {', '.join(sorted(known))}."
                )
            expected = known[knob]
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise TypeError(
                    f"Profile knob '{knob}' must be {expected.__name__}, got {value!r}."
                )
        return replace(self, **overrides)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_MODEL = "smollm2-135m-instruct"

PROFILES: dict[str, Profile] = {
    # 2 CPU cores, no network: every lesson in minutes with the real 135M model.
    "cpu": Profile(
        name="cpu",
        model_name=DEFAULT_MODEL,
        device="cpu",
        dtype="float32",
        num_threads=2,
        seed=42,
        train_steps=24,
        train_batch_size=4,
        eval_batch_size=16,
        max_seq_length=128,
        max_new_tokens=40,
        num_eval_examples=24,
        num_facts=24,
        sft_epochs=6,
        load_in_4bit=False,
        checkpoint_every=0,  # a minutes-long run: restarting costs less than writing checkpoints
    ),
    # One Colab/Kaggle-class GPU: longer training, bigger batches, QLoRA with bitsandbytes.
    "gpu": Profile(
        name="gpu",
        model_name=DEFAULT_MODEL,
        device="cuda",
        dtype="bfloat16",
        num_threads=2,
        seed=42,
        train_steps=300,
        train_batch_size=32,
        eval_batch_size=64,
        max_seq_length=256,
        max_new_tokens=128,
        num_eval_examples=200,
        num_facts=153,
        sft_epochs=6,
        load_in_4bit=True,
        checkpoint_every=50,  # Colab/Kaggle sessions drop: a rerun resumes from the last checkpoint
    ),
}


def get_profile(name: str) -> Profile:
    """The named profile, or an error listing the names that exist."""
    if name not in PROFILES:
        raise ValueError(f"Unknown profile '{name}'. Known profiles: {', '.join(PROFILES)}.")
    return PROFILES[name]
