import copy
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.data.chat_format import IGNORE_INDEX
from course_lib.train.distillation import check_same_vocabulary, distillation_loss, shifted_distillation_terms


def logits_pair(seed: int = 0, shape=(2, 5, 11)):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator) * 2, torch.randn(*shape, generator=generator) * 2


def test_hand_computed_case():
    # Teacher (0.75, 0.25), student (0.5, 0.5) at T = 1: KL = 0.75 ln 1.5 + 0.25 ln 0.5.
    teacher = torch.log(torch.tensor([[0.75, 0.25]]))
    student = torch.zeros(1, 2)
    expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert distillation_loss(student, teacher).item() == pytest.approx(expected, rel=1e-6)
    # At T = 2 the logits halve: teacher softmax(ln(0.75)/2, ln(0.25)/2) = (sqrt(3), 1) / (sqrt(3) + 1).
    p = math.sqrt(3) / (math.sqrt(3) + 1)
    softened = p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p))
    assert distillation_loss(student, teacher, temperature=2.0).item() == pytest.approx(4 * softened, rel=1e-6)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 4.0])
def test_equals_trl_gkd_forward_kl_times_t_squared(temperature):
    from trl.experimental.gkd import GKDTrainer

    student, teacher = logits_pair()
    labels = torch.randint(0, 11, (2, 5))
    labels[0, :2] = IGNORE_INDEX
    ours = distillation_loss(student, teacher, labels != IGNORE_INDEX, temperature)
    trl = GKDTrainer.generalized_jsd_loss(student, teacher, labels=labels, beta=0.0, temperature=temperature)
    assert ours.item() == pytest.approx(temperature**2 * trl.item(), rel=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_equals_trl_distillation_trainer_loss_times_t_squared(temperature):
    from trl.trainer.distillation_trainer import _chunked_divergence_loss

    generator = torch.Generator().manual_seed(1)
    student_hidden, teacher_hidden = torch.randn(2, 4, 8, generator=generator), torch.randn(2, 4, 6, generator=generator)
    student_head, teacher_head = torch.randn(13, 8, generator=generator), torch.randn(13, 6, generator=generator)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    trl, _, _ = _chunked_divergence_loss(student_hidden, teacher_hidden, student_head, teacher_head, mask, beta=0.0,
                                         temperature=temperature)
    ours = distillation_loss(student_hidden @ student_head.T, teacher_hidden @ teacher_head.T, mask, temperature)
    assert ours.item() == pytest.approx(temperature**2 * trl.item(), rel=1e-4)


def test_zero_exactly_when_the_distributions_match():
    student, teacher = logits_pair()
    assert distillation_loss(teacher + 3.0, teacher).item() == pytest.approx(0.0, abs=1e-6)  # a shift changes nothing
    assert distillation_loss(student, teacher).item() > 0.01


def test_high_temperature_becomes_logit_matching():
    # For large T, T² · KL tends to the mean over positions of the centred squared logit gap / (2 · vocab)
    # (Hinton et al. 2015): the T² factor keeps the loss on one scale as T grows.
    student, teacher = (logits.double() for logits in logits_pair(shape=(3, 7)))
    gap = teacher - student
    centred = gap - gap.mean(dim=-1, keepdim=True)
    limit = (centred.pow(2).sum(dim=-1) / (2 * 7)).mean().item()
    values = [distillation_loss(student, teacher, temperature=t).item() for t in (1.0, 10.0, 100.0, 1000.0)]
    assert values[-1] == pytest.approx(limit, rel=1e-3)
    assert abs(values[1] - limit) > abs(values[2] - limit) > abs(values[3] - limit)


def test_temperature_spreads_the_teachers_probability():
    _, teacher = logits_pair(shape=(1, 50))
    entropies = [-(F.softmax(teacher / t, -1) * F.log_softmax(teacher / t, -1)).sum().item() for t in (0.5, 1, 2, 4)]
    assert entropies == sorted(entropies)


def test_mask_selects_positions():
    student, teacher = logits_pair()
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[1, 3] = True
    assert distillation_loss(student, teacher, mask).item() == pytest.approx(
        distillation_loss(student[1, 3], teacher[1, 3]).item(), rel=1e-6)


def test_shifted_terms_score_the_next_token():
    student, teacher = logits_pair(shape=(1, 4, 11))
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 6, 2]])  # the answer is the last two tokens
    soft, hard = shifted_distillation_terms(student, teacher, labels, temperature=1.0)
    assert soft.item() == pytest.approx(distillation_loss(student[0, 1:3], teacher[0, 1:3]).item(), rel=1e-6)
    expected_hard = F.cross_entropy(student[0, 1:3], torch.tensor([6, 2]))
    assert hard.item() == pytest.approx(expected_hard.item(), rel=1e-6)


@pytest.mark.parametrize(("student_shape", "kwargs", "message"), [
    ((2, 5, 12), {}, "same vocabulary"),
    ((2, 5, 11), {"temperature": 0.0}, "temperature must be > 0"),
    ((2, 5, 11), {"mask": torch.zeros(2, 5, dtype=torch.bool)}, "selects no position"),
    ((2, 5, 11), {"mask": torch.ones(2, 4, dtype=torch.bool)}, "must match"),
])
def test_bad_input_is_refused(student_shape, kwargs, message):
    _, teacher = logits_pair()
    with pytest.raises(ValueError, match=message):
        distillation_loss(torch.zeros(student_shape), teacher, **kwargs)


def test_different_tokenizers_are_refused(smollm2_tokenizer, chat_tokenizer):
    check_same_vocabulary(smollm2_tokenizer, smollm2_tokenizer)
    with pytest.raises(ValueError, match="need the same vocabulary.*distil through data"):
        check_same_vocabulary(smollm2_tokenizer, chat_tokenizer)


ROWS = [{"prompt": f"What is {a} plus {b}?", "completion": f"{a + b}"} for a in range(4) for b in range(4)]


def distillation_trainer(tmp_path, student, teacher, tokenizer, **kwargs):
    from course_lib.core.profiles import PROFILES
    from course_lib.train.distillation import LogitDistillationTrainer
    from course_lib.train.sft import conversational, training_config

    config = training_config(tmp_path, PROFILES["cpu"], max_steps=kwargs.pop("max_steps", 1), learning_rate=1e-2,
                             disable_tqdm=True, logging_steps=1)
    return LogitDistillationTrainer(model=student, args=config, processing_class=tokenizer,
                                    train_dataset=conversational(ROWS), teacher=teacher, **kwargs)


def first_batch(trainer):
    return next(iter(trainer.get_train_dataloader()))


def test_trainer_loss_mixes_soft_and_hard_terms(tmp_path, tiny_llama, chat_tokenizer):
    student, teacher = tiny_llama(vocab_size=len(chat_tokenizer)), tiny_llama(vocab_size=len(chat_tokenizer))
    torch.nn.init.normal_(teacher.lm_head.weight)  # a teacher that disagrees with the student
    losses = {}
    for alpha in (0.0, 0.3, 1.0):
        trainer = distillation_trainer(tmp_path, student, teacher, chat_tokenizer, alpha=alpha, temperature=2.0)
        batch = first_batch(trainer)
        losses[alpha] = trainer.compute_loss(student, batch).item()
    forward = {key: batch[key] for key in ("input_ids", "attention_mask")}
    with torch.no_grad():
        soft, hard = shifted_distillation_terms(student(**forward).logits, teacher(**forward).logits, batch["labels"], 2.0)
    assert losses[0.0] == pytest.approx(hard.item(), rel=1e-5)
    assert losses[1.0] == pytest.approx(soft.item(), rel=1e-5)
    assert losses[0.3] == pytest.approx(0.3 * soft.item() + 0.7 * hard.item(), rel=1e-5)
    first_answer_token = batch["labels"][0].ne(IGNORE_INDEX).nonzero()[0].item()
    assert first_answer_token > 0 and batch["attention_mask"][0, :first_answer_token].all()  # the prompt is not scored


def test_a_student_equal_to_its_teacher_has_zero_distillation_loss(tmp_path, tiny_llama, chat_tokenizer):
    student = tiny_llama(vocab_size=len(chat_tokenizer))
    trainer = distillation_trainer(tmp_path, student, copy.deepcopy(student), chat_tokenizer, alpha=1.0)
    assert trainer.compute_loss(student, first_batch(trainer)).item() == pytest.approx(0.0, abs=1e-6)


def test_training_moves_the_student_towards_the_teacher(tmp_path, tiny_llama, chat_tokenizer):
    student, teacher = tiny_llama(vocab_size=len(chat_tokenizer)), tiny_llama(vocab_size=len(chat_tokenizer))
    torch.nn.init.normal_(teacher.lm_head.weight)
    trainer = distillation_trainer(tmp_path, student, teacher, chat_tokenizer, alpha=1.0, max_steps=8)
    batch = first_batch(trainer)
    before = trainer.compute_loss(student, batch).item()
    trainer.train()
    student.train()
    assert trainer.compute_loss(student, batch).item() < 0.9 * before  # 25.8 -> 21.0 in 8 steps
    assert all(not parameter.requires_grad for parameter in trainer.teacher.parameters())


@pytest.mark.parametrize(("kwargs", "message"), [({"alpha": 1.5}, "alpha must be between 0 and 1"),
                                                 ({"temperature": 0.0}, "temperature must be > 0")])
def test_trainer_refuses_bad_settings(tmp_path, tiny_llama, chat_tokenizer, kwargs, message):
    model = tiny_llama(vocab_size=len(chat_tokenizer))
    with pytest.raises(ValueError, match=message):
        distillation_trainer(tmp_path, model, model, chat_tokenizer, **kwargs)


def test_trainer_refuses_a_teacher_with_another_vocabulary(tmp_path, tiny_llama, chat_tokenizer):
    with pytest.raises(ValueError, match="needs the same vocabulary"):
        distillation_trainer(tmp_path, tiny_llama(vocab_size=len(chat_tokenizer)), tiny_llama(vocab_size=101),
                             chat_tokenizer)


def test_gradient_accumulation_averages_micro_batches(tmp_path, tiny_llama, chat_tokenizer):
    # Every row is the same, so every micro-batch has the same loss L; with 2 accumulation steps the logged
    # loss of the first step must be L, not 2L (the Trainer divides only losses it knows are not scaled).
    from course_lib.core.profiles import PROFILES
    from course_lib.train.distillation import LogitDistillationTrainer
    from course_lib.train.sft import conversational, training_config

    student, teacher = tiny_llama(vocab_size=len(chat_tokenizer)), tiny_llama(vocab_size=len(chat_tokenizer))
    torch.nn.init.normal_(teacher.lm_head.weight)
    config = training_config(tmp_path, PROFILES["cpu"], max_steps=1, learning_rate=1e-2, disable_tqdm=True,
                             per_device_train_batch_size=2, gradient_accumulation_steps=2)
    trainer = LogitDistillationTrainer(model=student, args=config, processing_class=chat_tokenizer,
                                       train_dataset=conversational([ROWS[0]] * 8), teacher=teacher, alpha=1.0)
    expected = trainer.compute_loss(student, first_batch(trainer)).item()
    trainer.train()
    logged = next(entry["loss"] for entry in trainer.state.log_history if "loss" in entry)
    assert logged == pytest.approx(expected, rel=1e-3)
