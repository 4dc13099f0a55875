"""resemblyzer's GE2E speaker encoder, with the real weights that ship inside its PyPI package.

The network (Wan et al., GE2E; resemblyzer 0.1.x) is 3 stacked LSTM layers (40 mel channels in,
256 hidden) and a linear layer to a 256-dim embedding, then ReLU and L2 normalisation. Layers:

- ``0``, ``1``, ``2``: the outputs of LSTM layers 1, 2 and 3, pooled over the clip's real frames;
- ``3``: the speaker embedding.

So ``num_layers == 4`` and every layer is 256-dim. There is no input-embedding layer: the input is
a 40-dim mel spectrogram, and the first learned representation is LSTM layer 1.

Inference follows resemblyzer's own ``embed_utterance``: the clip is volume-normalised (to
-30 dBFS, increase only) and, when ``webrtcvad`` imports, long silences are trimmed (resemblyzer's
``trim_long_silences``); without ``webrtcvad`` that step is skipped, which ``options()["vad"]``
records (it is part of the feature-cache key). The mel spectrogram uses resemblyzer's settings
(16 kHz, 40 mels, 25 ms window, 10 ms hop) and is cut into 1.6 s partials (1.3 per second, the
last one kept at >= 75 % coverage, zero-padded). The stacked LSTM is run as three single-layer
LSTMs with the same weights (identical arithmetic), so each layer's frames are visible. Each LSTM
layer is pooled over all frames of all partials that lie inside the clip (overlapping frames count
once per partial). The embedding is resemblyzer's: ``mean`` gives the L2-normalised mean of the
partial embeddings (exactly ``VoiceEncoder.embed_utterance``); ``mean+std`` appends the standard
deviation of the partial embeddings. Every partial has the same length, so batching is exact.

resemblyzer's ``__init__`` imports ``webrtcvad``; the package is therefore never imported here (only
located), so it works where ``webrtcvad`` is missing or broken.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from ..errors import SpeechprobeError
from .base import AdapterInfo, ModelAdapter
from .family import Checkpoint, Family, LoadContext
from .hub import autocast
from .lazy import Lazy, inference_mode
from .pooling import frame_mask, masked_pool

if TYPE_CHECKING:
    from .ge2e import GE2E

torch = Lazy("torch")

log = logging.getLogger("speechprobe")

RATE = 1.3  # partial utterances per second (embed_utterance's default)
MIN_COVERAGE = 0.75


def package_dir() -> Path:
    """Where the resemblyzer package is installed (without importing it)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise SpeechprobeError("resemblyzer is not installed: pip install 'speechprobe[speaker]'")
    return Path(next(iter(spec.submodule_search_locations)))


def hparams() -> ModuleType:
    """resemblyzer's ``hparams`` module (plain constants), loaded from its file."""
    spec = importlib.util.spec_from_file_location("_resemblyzer_hparams", package_dir() / "hparams.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def vad_trimmer() -> Callable[[np.ndarray], np.ndarray] | None:
    """resemblyzer's ``trim_long_silences`` when webrtcvad works, else None."""
    try:
        import webrtcvad

        webrtcvad.Vad(3)
        from resemblyzer.audio import trim_long_silences
    except Exception as e:
        log.debug("resemblyzer VAD unavailable (%s); long silences are not trimmed", e)
        return None
    return trim_long_silences


class ResemblyzerAdapter(ModelAdapter):
    """Layer-wise pooled features (3 LSTM layers + embedding) from resemblyzer's GE2E encoder."""

    def __init__(
        self,
        model: GE2E,
        hp: ModuleType,
        info: AdapterInfo,
        trim: Callable[[np.ndarray], np.ndarray] | None = None,
        device: str = "cpu",
        dtype: torch.dtype | None = None,
    ) -> None:
        self.model = model.eval().to(device)
        self.hp = hp
        self.trim = trim
        self.hop = int(hp.sampling_rate * hp.mel_window_step / 1000)
        self.n_fft = int(hp.sampling_rate * hp.mel_window_length / 1000)
        self.device = torch.device(device)
        self.dtype = dtype
        self.info = info

    def options(self) -> dict[str, object]:
        return {"vad": self.trim is not None, "dtype": str(self.dtype or "float32")}

    def window_seconds(self, duration: float) -> float:
        starts = self.partial_starts(int(duration * self.hp.sampling_rate))
        return len(starts) * self.hp.partials_n_frames * self.hop / self.hp.sampling_rate

    def partial_starts(self, n_samples: int) -> list[int]:
        """First mel frame of each partial, as resemblyzer's ``compute_partial_slices``."""
        n_partial = self.hp.partials_n_frames
        n_frames = int(np.ceil((n_samples + 1) / self.hop))
        step = int(np.round((self.hp.sampling_rate / RATE) / self.hop))
        starts = list(range(0, max(1, n_frames - n_partial + step + 1), step))
        coverage = (n_samples - starts[-1] * self.hop) / (n_partial * self.hop)
        if coverage < MIN_COVERAGE and len(starts) > 1:
            starts = starts[:-1]
        return starts

    def preprocess(self, audio: np.ndarray) -> np.ndarray:
        """Volume normalisation (increase only) and, with webrtcvad, silence trimming."""
        wav = np.asarray(audio, dtype=np.float32)
        rms = np.sqrt(np.mean((wav * 32767) ** 2)) if len(wav) else 0.0  # resemblyzer's normalize_volume
        if rms > 0:
            change = self.hp.audio_norm_target_dBFS - 20 * np.log10(rms / 32767)
            if change > 0:
                wav = (wav * (10 ** (change / 20))).astype(np.float32)
        if self.trim is not None:
            trimmed = self.trim(wav)
            if len(trimmed) >= self.hop:  # all silence: keep the clip rather than nothing
                wav = trimmed.astype(np.float32)
        return wav

    def mel(self, wav: np.ndarray) -> np.ndarray:
        """resemblyzer's ``wav_to_mel_spectrogram``: ``(frames, 40)`` power mel, not log."""
        import librosa

        frames = librosa.feature.melspectrogram(
            y=wav, sr=self.hp.sampling_rate, n_fft=self.n_fft, hop_length=self.hop, n_mels=self.hp.mel_n_channels
        )
        return frames.astype(np.float32).T

    @inference_mode
    def forward(self, batch: Sequence[np.ndarray], pooling: str = "mean") -> np.ndarray:
        n_partial = self.hp.partials_n_frames
        partials, real, counts = [], [], []
        for audio in batch:
            wav = self.preprocess(audio)
            starts = self.partial_starts(len(wav))
            end = (starts[-1] + n_partial) * self.hop
            mel = self.mel(np.pad(wav, (0, max(0, end - len(wav)))))
            n_real = max(1, math.ceil(len(wav) / self.hop))  # frames centred inside the clip
            partials += [mel[s : s + n_partial] for s in starts]
            real += [min(n_partial, max(0, n_real - s)) for s in starts]
            counts.append(len(starts))
        mels = torch.from_numpy(np.stack(partials)).to(self.device, non_blocking=True)
        with autocast(self.device, self.dtype):
            outputs, embeds = self.model(mels)
        # Each clip's frames: its partials side by side, padded to the batch's most partials.
        width = max(counts)
        frame_real = frame_mask(torch.tensor(real, device=self.device), n_partial)  # (P, T)
        mask = _per_clip(frame_real, counts, width).reshape(len(batch), width * n_partial)
        hidden = torch.stack([_per_clip(h.float(), counts, width).flatten(1, 2) for h in outputs])
        pooled = masked_pool(hidden, mask, pooling)  # (B, 3, D[*2])
        partial_mask = frame_mask(torch.tensor(counts, device=self.device), width)
        emb = masked_pool(_per_clip(embeds.float(), counts, width)[None], partial_mask, pooling)  # (B, 1, E[*2])
        dim = embeds.shape[1]
        emb[..., :dim] = emb[..., :dim] / emb[..., :dim].norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return torch.cat([pooled, emb], dim=1).cpu().numpy()


def _per_clip(x: torch.Tensor, counts: list[int], width: int) -> torch.Tensor:
    """Rows of ``x`` (one per partial) regrouped per clip: ``(B, width, ...)``, zero-padded."""
    out = x.new_zeros((len(counts), width) + tuple(x.shape[1:]))
    for i, chunk in enumerate(torch.split(x, counts)):
        out[i, : len(chunk)] = chunk
    return out


def _load(ctx: LoadContext) -> ResemblyzerAdapter:
    from ..cache import weights_sha256
    from .ge2e import GE2E

    hp = hparams()
    weights = package_dir() / "pretrained.pt"
    trim = vad_trimmer()
    torch.manual_seed(ctx.seed)
    model = GE2E(hp.mel_n_channels, hp.model_hidden_size, hp.model_embedding_size, hp.model_num_layers)
    if ctx.random_init:
        ctx.fingerprint = f"random:seed{ctx.seed}:ge2e-{hp.model_num_layers}x{hp.model_hidden_size}"
    else:
        if not weights.is_file():
            raise SpeechprobeError(f"{weights}: resemblyzer's packaged weights are missing")
        model.load_resemblyzer(torch.load(weights, map_location="cpu", weights_only=True)["model_state"])
        ctx.fingerprint = "sha256:" + weights_sha256([weights])[:16]
    if hp.model_hidden_size != hp.model_embedding_size:
        raise SpeechprobeError("resemblyzer: LSTM and embedding sizes differ; layers could not share one array")
    info = ctx.info(
        sample_rate=int(hp.sampling_rate),
        num_layers=hp.model_num_layers + 1,
        hidden_size=hp.model_hidden_size,
        frame_rate=1000 / hp.mel_window_step,
        padding="1.6 s partials (resemblyzer's embed_utterance); pooled over frames inside the clip",
    )
    return ResemblyzerAdapter(model, hp, info, trim=trim, device=ctx.device, dtype=ctx.torch_dtype)


SOURCE = "package:resemblyzer"
FAMILY = Family(
    "resemblyzer",
    _load,
    title="Resemblyzer",
    hub_patterns=("resemblyzer",),
    # GE2E speaker encoder, weights inside the resemblyzer package: 3 LSTM layers + embedding.
    checkpoints=(Checkpoint("resemblyzer", num_layers=4, hidden_size=256, packaged=True),),
    layer0="output of LSTM layer 1 (there is no input-embedding layer)",
    source=SOURCE,
)
FAMILIES = (FAMILY,)
