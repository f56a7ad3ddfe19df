"""The papers' loss variants on top of TRL's trainers.

HS-DPO (GuardReasoner): TRL already combines losses (`loss_type: [sigmoid, sft]` with
`loss_weights: [1.0, 2.0]` is the paper's DPO + 2 x NLL of the chosen answer), but it has no
per-pair weight. `WeightedDPOTrainer` multiplies each pair's sigmoid term by the dataset's
`weight` column; the SFT term stays unweighted, as in the paper.

Label-weighted SFT (ThinkGuard): `LabelWeightedSFTTrainer` multiplies the loss on the label tokens
(the verdict line, or the span `label_pattern` matches) by `label_weight`. It adds
`(label_weight - 1) x NLL(label tokens)` to TRL's own loss, with TRL's normaliser, so with
`label_weight: 1` the loss is TRL's plain SFT loss.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import PartialState
from trl import DPOTrainer, SFTTrainer

from aidsafe.errors import AidsafeError
from aidsafe.oneline import one_line

__all__ = ["LabelWeightedSFTTrainer", "WeightedDPOTrainer", "check_weighted_dpo", "label_span_mask"]

_WEIGHTED_LOSS_TYPES = {"sigmoid", "sft"}


def check_weighted_dpo(config: Any) -> None:
    """Per-pair weights are implemented for TRL's sigmoid loss (plus its sft term) only."""
    loss_types = list(config.loss_type)
    if "sigmoid" not in loss_types or not set(loss_types) <= _WEIGHTED_LOSS_TYPES:
        raise AidsafeError(
            f"trainer.loss_type: a weight column needs loss_type [sigmoid] or [sigmoid, sft], got {loss_types}"
        )
    for key, default in (("ld_alpha", None), ("f_divergence_type", "reverse_kl"), ("use_weighting", False)):
        if getattr(config, key) != default:
            raise AidsafeError(f"trainer.{key}: not supported together with a weight column")


class WeightedDPOTrainer(DPOTrainer):
    """DPOTrainer whose sigmoid term is multiplied, pair by pair, by the `weight` column."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        check_weighted_dpo(self.args)  # `build_trainer` checks this before the model loads, too
        self.data_collator = _AddColumn(self.data_collator, "weight", pad=False)

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if "weight" not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, "weight"]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # TRL's DPO loss for the sigmoid/sft terms, with the per-pair weight; the forward passes are
        # TRL's (fused LM head, reference via `compute_ref_log_probs`), so PEFT, a separate reference
        # model and precomputed reference log-probs behave as in DPOTrainer.
        mode = "train" if self.model.training else "eval"
        weights = inputs.pop("weight")
        completion_mask = inputs["completion_mask"]
        model_kwargs = {
            k: v for k, v in inputs.items() if k not in ("completion_mask", "ref_chosen_logps", "ref_rejected_logps")
        }
        if self.aux_loss_enabled:  # MoE (e.g. Mixtral): the router's load-balancing loss, as TRL adds it
            model_kwargs["output_router_logits"] = True
        labels = inputs["input_ids"].masked_fill(completion_mask == 0, -100)
        outputs = model(**model_kwargs, labels=labels, use_cache=False, fused_lm_head=True)
        shift_mask = completion_mask[:, 1:]
        per_token_logps = outputs.log_probs[:, -shift_mask.size(1) :]  # zero outside the completions
        chosen_logps, rejected_logps = per_token_logps.sum(dim=1).chunk(2)  # the batch is [chosen..., rejected...]
        if self.precompute_ref_logps:
            ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            # With PEFT and no separate reference, TRL disables the adapter inside this call.
            reference = self.ref_model if self.ref_model is not None else self.model
            ref_chosen, ref_rejected = self.compute_ref_log_probs(reference, inputs)
        chosen_ratio, rejected_ratio = chosen_logps - ref_chosen, rejected_logps - ref_rejected

        loss = torch.zeros((), device=per_token_logps.device)
        for loss_type, coefficient in zip(self.loss_types, self.loss_weights, strict=True):
            if loss_type == "sigmoid":
                per_pair = -F.logsigmoid(self.beta * (chosen_ratio - rejected_ratio))
                term = (per_pair * weights.to(per_pair.dtype)).mean()
            else:  # "sft": TRL's definition, the mean NLL over all chosen tokens of the batch
                chosen_token_logps, _ = per_token_logps.chunk(2)
                term = -chosen_token_logps[shift_mask.chunk(2)[0].bool()].mean()
            loss = loss + coefficient * term
        if self.aux_loss_enabled:
            loss = loss + self.router_aux_loss_coef * outputs.aux_loss

        self._log_rewards(mode, chosen_ratio.detach(), rejected_ratio.detach(), chosen_logps, rejected_logps)
        return (loss, outputs) if return_outputs else loss

    def _log_rewards(self, mode: str, chosen_ratio, rejected_ratio, chosen_logps, rejected_logps) -> None:
        gather, metrics = self.accelerator.gather, self._metrics[mode]
        chosen_rewards, rejected_rewards = self.beta * chosen_ratio, self.beta * rejected_ratio
        metrics["rewards/chosen"].append(gather(chosen_rewards).mean().item())
        metrics["rewards/rejected"].append(gather(rejected_rewards).mean().item())
        metrics["rewards/accuracies"].append(gather((chosen_rewards > rejected_rewards).float()).mean().item())
        metrics["rewards/margins"].append(gather(chosen_rewards - rejected_rewards).mean().item())
        metrics["logps/chosen"].append(gather(chosen_logps.detach()).mean().item())
        metrics["logps/rejected"].append(gather(rejected_logps.detach()).mean().item())


class LabelWeightedSFTTrainer(SFTTrainer):
    """SFTTrainer that scales the loss on each answer's label tokens by `label_weight`."""

    def __init__(self, *args: Any, label_weight: float, label_pattern: str, **kwargs: Any) -> None:
        # Set before TRL's __init__, which prepares the dataset through our _prepare_dataset.
        self.label_weight = label_weight
        self.label_pattern = label_pattern
        super().__init__(*args, **kwargs)
        self.data_collator = _AddColumn(self.data_collator, "label_span_mask", pad=True)

    def _prepare_dataset(self, dataset, processing_class, args, packing, formatting_func, dataset_name):
        dataset = super()._prepare_dataset(dataset, processing_class, args, packing, formatting_func, dataset_name)
        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        with PartialState().main_process_first():
            return dataset.map(
                _mark_labels,
                with_indices=True,
                fn_kwargs={"tokenizer": tokenizer, "pattern": self.label_pattern, "name": dataset_name},
                desc=f"Marking label tokens in {dataset_name} dataset",
            )

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if "label_span_mask" not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, "label_span_mask"]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        span_mask = inputs.pop("label_span_mask")
        with _captured_outputs(model) as captured:
            result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss = result[0] if return_outputs else result
        outputs = captured[0]
        # log_probs[:, t] scores token t + 1, so the token mask shifts by one.
        label_nll = -(outputs.log_probs * span_mask[:, 1:].to(outputs.log_probs.dtype)).sum()
        # The same normaliser as SFTTrainer.compute_loss, so the extra term is on the plain loss's scale.
        num_tokens = outputs.label_mask.sum() if num_items_in_batch is None else num_items_in_batch
        extra = (self.label_weight - 1.0) * label_nll / torch.as_tensor(num_tokens).clamp(min=1)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            extra = extra * (self.accelerator.num_processes // self.get_tp_size())
        loss = loss + extra
        return (loss, result[1]) if return_outputs else loss


def label_span_mask(tokenizer: Any, input_ids: list[int], labels: list[int], answer: str, pattern: str) -> list[int]:
    """1 on the tokens of the first `pattern` match in `answer`, found among the trained tokens.

    Works on TRL's tokenized example, so it holds for any chat template: the answer is located by
    decoding the trained tokens, and each token's extent by decoding growing prefixes (only up to
    the end of the label, which sits at the start of the answer).
    """
    match = re.search(pattern, answer)
    if match is None or match.end() == match.start():
        raise ValueError(f"label_pattern {pattern!r} matches nothing in the answer {one_line(answer, 60)!r}")
    mask = [0] * len(input_ids)
    first = next((i for i, label in enumerate(labels) if label != -100), len(labels))
    trained = input_ids[first:]
    text = tokenizer.decode(trained)
    start = text.find(answer[: match.end()])
    if start < 0:
        raise ValueError(f"the label {match.group(0)!r} is not in the tokenized answer (cut by max_length?)")
    start, end = start + match.start(), start + match.end()
    previous = 0
    for k in range(len(trained)):
        current = len(tokenizer.decode(trained[: k + 1]))
        if current > start and previous < end:
            mask[first + k] = 1
        if current >= end:
            break
        previous = current
    return mask


def _mark_labels(example: dict[str, Any], index: int, tokenizer: Any, pattern: str, name: str) -> dict[str, Any]:
    completion = example["completion"]
    answer = completion if isinstance(completion, str) else completion[-1]["content"]
    try:
        mask = label_span_mask(tokenizer, example["input_ids"], example["labels"], answer, pattern)
    except ValueError as exc:
        raise AidsafeError(f"{name} dataset, row {index}: {exc}") from None
    return {"label_span_mask": mask}


@contextlib.contextmanager
def _captured_outputs(model: torch.nn.Module) -> Iterator[list[Any]]:
    """Keep what the model's forward returns, so the extra loss term reuses TRL's forward pass."""
    captured: list[Any] = []
    handle = model.register_forward_hook(lambda _module, _args, output: captured.append(output))
    try:
        yield captured
    finally:
        handle.remove()


class _AddColumn:
    """Wrap TRL's collator to carry one more per-example column into the batch."""

    def __init__(self, collator: Any, column: str, pad: bool) -> None:
        self.collator, self.column, self.pad = collator, column, pad

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collator(examples)
        values = [example[self.column] for example in examples]
        if self.pad:  # token-level: right-pad with 0 to the batch width, like TRL pads input_ids
            width = batch["input_ids"].size(1)
            values = [list(v[:width]) + [0] * (width - len(v)) for v in values]
            batch[self.column] = torch.tensor(values, dtype=torch.long)
        else:
            batch[self.column] = torch.tensor(values, dtype=torch.float32)
        return batch
