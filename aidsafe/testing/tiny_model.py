"""A tiny random causal LM and tokenizer, built locally in seconds; nothing is downloaded.

For trying `aidsafe train` with no GPU and no Hub, and for aidsafe's own training tests and
benchmark:

    python -m aidsafe.testing.tiny_model ./tiny
    aidsafe train sft sft --model ./tiny --data runs/try --output runs/tiny-sft --set trainer.max_steps=2

The tokenizer is a byte-level BPE trained on a few sentences (so any text encodes and decodes back
exactly) with a ChatML-style chat template; the model is a 2-layer Llama. Its outputs are noise:
it exists to run the training code paths, not to learn anything.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

__all__ = ["CHAT_TEMPLATE", "CORPUS", "build_tiny_model", "main"]

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Text shaped like what aidsafe trains on (answers, guard verdicts, thoughts citing policies).
CORPUS = [
    "How do I bake bread at home? I can help with that: mix flour, water, yeast and salt.",
    "- Safety Assessment: unsafe\n- Categories: S3, S7\n- Explanation: the request asks for harm.",
    "- Safety Assessment: safe\n- Explanation: the answer is a harmless recipe.",
    "<think>\nP5: the user wants a recipe; policy allows it.\n</think>\n\nHere is how.",
    "I cannot help with making weapons. Policy P3 forbids physical harm.",
]


def build_tiny_model(
    folder: Path | str,
    *,
    hidden_size: int = 32,
    vocab_size: int = 384,
    max_positions: int = 512,
    corpus: Sequence[str] | None = None,
) -> Path:
    """Write a 2-layer random Llama and its tokenizer to `folder`; return the folder.

    The defaults are what the tests use; the throughput benchmark asks for a wider model with
    longer context. The same arguments always give the same weights (seeded).
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(list(corpus) if corpus is not None else CORPUS * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", eos_token="<|im_end|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a tiny random Llama and tokenizer to a folder.")
    parser.add_argument("folder", type=Path, help="Where to write it (created).")
    args = parser.parse_args(argv)
    print(build_tiny_model(args.folder), flush=True)


if __name__ == "__main__":
    main()
