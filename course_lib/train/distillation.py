"""Knowledge distillation: a student learns the teacher's whole token distribution, not only the right token.

:func:`distillation_loss` is Hinton et al.'s (2015) soft-target loss written
out: both models' logits are softened by a temperature T, and the student pays
the KL divergence from the teacher's distribution to its own, times T². It
equals TRL's forward-KL distillation loss (``beta=0``) times T² (TRL leaves
the factor out; on one micro-batch: TRL divides summed losses by the global token
count under gradient accumulation). :class:`LogitDistillationTrainer` trains with it on SFT data
(off-policy: the data's answers); on-policy distillation, where the student
answers and the teacher grades every token, is TRL's ``DistillationTrainer``.
"""

from typing import Any

import torch
import torch.nn.functional as F
from trl import SFTTrainer

from course_lib.data.chat_format import IGNORE_INDEX


def check_same_vocabulary(teacher_tokenizer: Any, student_tokenizer: Any) -> None:
    """Raise ValueError unless both tokenizers map every token to the same id (logits must line up)."""
    teacher_vocab, student_vocab = teacher_tokenizer.get_vocab(), student_tokenizer.get_vocab()
    if teacher_vocab != student_vocab:
        differing = sorted(set(teacher_vocab.items()) ^ set(student_vocab.items()), key=lambda item: item[1])
        raise ValueError(
            f"teacher and student tokenizers differ ({len(teacher_vocab)} and {len(student_vocab)} tokens; first "
            f"differences {differing[:3]}): logit distillation compares the two distributions token id by token id, "
            "so both models need the same vocabulary. Use a student of the teacher's family, or distil through data "
            "(train the student on the teacher's generated text) instead."
        )


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor | None = None,
                      temperature: float = 1.0) -> torch.Tensor:
    """T² · KL(teacher_T ‖ student_T), averaged over the positions ``mask`` marks (all positions if None).

    ``*_logits`` have shape (..., vocab) and predict the same tokens. Dividing
    logits by T > 1 spreads the teacher's probability over the tokens it ranks
    next (its "dark knowledge"); the gradient of the softened KL shrinks as
    1/T², so the T² factor keeps the loss on the scale of the hard-label loss
    whatever the temperature.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student logits {tuple(student_logits.shape)} and teacher logits {tuple(teacher_logits.shape)} differ: "
            "logit distillation needs the same positions and the same vocabulary in both models"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    dtype = torch.promote_types(student_logits.dtype, torch.float32)  # at least fp32: bf16 logits lose the tail
    student_log_probs = F.log_softmax(student_logits.to(dtype) / temperature, dim=-1)
    teacher_log_probs = F.log_softmax(teacher_logits.to(dtype) / temperature, dim=-1)
    per_position = (teacher_log_probs.exp() * (teacher_log_probs - student_log_probs)).sum(dim=-1)
    if mask is not None:
        if mask.shape != per_position.shape:
            raise ValueError(f"mask {tuple(mask.shape)} must match the logits' positions {tuple(per_position.shape)}: "
                             "one flag per position, without the vocabulary dimension")
        per_position = per_position[mask.bool()]
    if per_position.numel() == 0:
        raise ValueError("the mask selects no position: there is nothing to distil (were all the answers cut off "
                         "by max_length? raise it, or drop rows whose answer does not fit)")
    return per_position.mean() * temperature**2


def shifted_distillation_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                               temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The distillation loss and the hard-label cross-entropy on the tokens ``labels`` marks for training.

    ``labels`` are the Trainer's (unshifted, IGNORE_INDEX outside the answer):
    the logits at position i predict the token at i + 1.
    """
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    student, teacher = student_logits[:, :-1], teacher_logits[:, :-1]
    soft = distillation_loss(student, teacher, mask, temperature)
    hard = F.cross_entropy(student[mask].float(), targets[mask])
    return soft, hard


class LogitDistillationTrainer(SFTTrainer):
    """TRL's SFTTrainer whose loss is ``alpha`` · distillation loss + (1 − ``alpha``) · hard-label loss.

    The data, batching and optimisation are SFTTrainer's; only the loss
    changes. The teacher runs without gradients on the same batch.
    ``alpha=0`` is plain fine-tuning, ``alpha=1`` pure distillation.
    """

    # The loss is a mean over one micro-batch's answer tokens: the Trainer must divide it by the
    # gradient-accumulation steps (it skips that for models whose forward takes loss kwargs, like Llama's).
    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, teacher: Any, temperature: float = 2.0, alpha: float = 0.5, **kwargs: Any):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        super().__init__(*args, **kwargs)
        teacher_vocab = teacher.get_output_embeddings().weight.shape[0]
        student_vocab = self.model.get_output_embeddings().weight.shape[0]
        if teacher_vocab != student_vocab:
            raise ValueError(f"teacher vocabulary {teacher_vocab} != student vocabulary {student_vocab}: logit "
                             "distillation needs the same vocabulary")
        self.teacher = teacher.eval().requires_grad_(False)
        self.temperature = temperature
        self.alpha = alpha

    def compute_loss(self, model: Any, inputs: dict[str, torch.Tensor], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        forward = {key: inputs[key] for key in ("input_ids", "attention_mask", "position_ids") if key in inputs}
        outputs = model(**forward, use_cache=False)
        with torch.no_grad():
            teacher_logits = self.teacher(**forward, use_cache=False).logits
        soft, hard = shifted_distillation_terms(outputs.logits, teacher_logits, inputs["labels"], self.temperature)
        loss = self.alpha * soft + (1 - self.alpha) * hard
        return (loss, outputs) if return_outputs else loss
