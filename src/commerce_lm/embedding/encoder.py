"""A frozen encoder that turns texts into vectors, fast, in input order.

The work is split so the expensive part stays busy: a background thread tokenizes the next chunk of
documents while the model runs on the current one; inside a chunk, documents are sorted by length
and grouped into token-budget batches padded only to their own longest member; the vectors are
written back to their input positions, so callers never see the batching order.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from commerce_lm import models
from commerce_lm.embedding.batching import pad_batch, token_budget_batches
from commerce_lm.embedding.pooling import POOLINGS, pool


@dataclass(frozen=True)
class EncoderSettings:
    """How to run the encoder.

    Attributes:
        max_length: Tokens kept per document, special tokens included.
        token_budget: Padded tokens per batch (``batch_size * longest``).
        pooling: ``cls`` or ``mean``.
        device: ``cpu``, ``cuda`` or ``None`` for CUDA when available.
        num_threads: Torch intra-op threads on CPU; ``None`` keeps torch's default.
        fast_path: On CPU, run BERT-family encoders through :mod:`~commerce_lm.embedding.fastpath`
            (same results, less work); other models and devices always use Hugging Face's forward.
        prompt: Text put before every document before tokenizing (e5's ``passage: ``); it counts
            towards ``max_length``, as in sentence-transformers.
    """

    max_length: int = 128
    token_budget: int = 8192
    pooling: str = "cls"
    device: str | None = None
    num_threads: int | None = None
    fast_path: bool = True
    prompt: str = ""


def _pick_device(requested: str | None) -> str:
    import torch

    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def _autocast_dtype(device: str):  # noqa: ANN202 - a torch dtype or None
    """Half precision on GPU (bf16 where supported); fp32 on CPU, where bf16 is far slower."""
    import torch

    if not device.startswith("cuda"):
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


class Embedder:
    """Embed texts with a frozen Hugging Face encoder.

    Args:
        model: HF hub id, local folder or ``gs://`` folder of the encoder and its tokenizer.
        settings: Batching, pooling and device settings.
        encoder: An already loaded encoder to use instead of loading ``model`` (benchmarks share
            one model object between methods).
        tokenizer: An already loaded tokenizer, likewise.
    """

    def __init__(
        self,
        model: str,
        settings: EncoderSettings | None = None,
        encoder=None,  # noqa: ANN001
        tokenizer=None,  # noqa: ANN001
    ) -> None:
        # torch (through the fast path too) is imported where an encoder is built, not with this
        # module: a step whose texts are all in the vector store never builds one, and importing
        # torch was most of such a step's cost.
        import torch

        from commerce_lm.embedding import fastpath

        self.settings = settings or EncoderSettings()
        if self.settings.pooling not in POOLINGS:
            raise ValueError(f"pooling {self.settings.pooling!r}: expected one of {POOLINGS}")
        if self.settings.num_threads:
            torch.set_num_threads(self.settings.num_threads)
        self.device = _pick_device(self.settings.device)
        self.tokenizer = tokenizer if tokenizer is not None else models.load_tokenizer(model)
        self.encoder = encoder if encoder is not None else models.load_encoder(model)
        self.encoder.eval().to(self.device)
        if getattr(self.encoder, "pooler", None) is not None:
            # BERT-style pooler (dense + tanh on [CLS]) feeds classification heads; we never use it.
            self.encoder.pooler = None
        self.autocast_dtype = _autocast_dtype(self.device)
        # The fast path is measured and tested on CPU only; on GPU the HF forward with SDPA and
        # autocast is already kernel-bound.
        use_fast = self.settings.fast_path and self.device == "cpu" and fastpath.supports(self.encoder)
        self.fast = fastpath.FastEncoder(self.encoder) if use_fast else None
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            raise ValueError(f"{model}: the tokenizer has no padding token")
        self.dim = int(self.encoder.config.hidden_size)

    # -- tokenization -------------------------------------------------------------------------

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (after the prompt), truncated to ``max_length``, unpadded."""
        prompt = self.settings.prompt
        encoded = self.tokenizer(
            [prompt + text for text in texts] if prompt else list(texts),
            truncation=True,
            max_length=self.settings.max_length,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return encoded["input_ids"]

    # -- compute ------------------------------------------------------------------------------

    def _forward(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        ids_t = torch.from_numpy(input_ids).to(self.device, non_blocking=True)
        mask_t = torch.from_numpy(mask).to(self.device, non_blocking=True)
        # A batch without padding needs no mask: attention then skips building and applying one.
        model_mask = None if mask.all() else mask_t
        if self.fast is not None:
            return self.fast(ids_t, model_mask, self.settings.pooling).float().numpy()
        with torch.autocast(device_type="cuda", dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            hidden = self.encoder(input_ids=ids_t, attention_mask=model_mask).last_hidden_state
            pooled = pool(hidden, mask_t, self.settings.pooling)
        return pooled.float().cpu().numpy()

    def embed_tokenized(
        self,
        token_ids: Sequence[Sequence[int]],
        progress: Callable[[int], None] | None = None,
        on_tokens: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Embed already tokenized documents.

        Args:
            token_ids: Token ids per document.
            progress: Called with the number of documents finished after each batch.
            on_tokens: Called with each batch's real and padded token counts.

        Returns:
            ``float32 [len(token_ids), dim]`` vectors in input order.
        """
        import torch

        out = np.empty((len(token_ids), self.dim), dtype=np.float32)
        lengths = [len(ids) for ids in token_ids]
        with torch.inference_mode():
            for batch in token_budget_batches(lengths, self.settings.token_budget):
                input_ids, mask = pad_batch([token_ids[i] for i in batch], self.pad_id)
                out[batch] = self._forward(input_ids, mask)
                if progress is not None:
                    progress(len(batch))
                if on_tokens is not None:
                    on_tokens(int(mask.sum()), int(mask.size))
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts; ``float32 [len(texts), dim]`` in input order."""
        return self.embed_tokenized(self.tokenize(texts))

    def embed_chunks(
        self,
        chunks: Iterable[Sequence[str]],
        progress: Callable[[int], None] | None = None,
        on_tokens: Callable[[int, int], None] | None = None,
    ) -> Iterator[np.ndarray]:
        """Embed a stream of text chunks, tokenizing the next chunk while the current one runs.

        Memory stays bounded by about two chunks whatever the stream's length.

        Args:
            chunks: Lists of texts; each is length-sorted and batched on its own.
            progress: Called with the number of documents finished after each batch.
            on_tokens: Called with each batch's real and padded token counts.

        Yields:
            One ``float32 [len(chunk), dim]`` array per chunk, in input order.
        """
        iterator = iter(chunks)
        # One worker is enough: the fast tokenizer releases the GIL and is far quicker than the model.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenize") as pool_:

            def submit() -> concurrent.futures.Future | None:
                chunk = next(iterator, None)
                return None if chunk is None else pool_.submit(self.tokenize, chunk)

            pending = submit()
            while pending is not None:
                token_ids = pending.result()
                pending = submit()
                yield self.embed_tokenized(token_ids, progress, on_tokens)
