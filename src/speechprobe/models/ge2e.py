"""resemblyzer's GE2E speaker-encoder network (:mod:`.resemblyzer` loads it when a model is loaded, not when the
families are listed)."""

from __future__ import annotations

import torch


class GE2E(torch.nn.Module):
    """resemblyzer's ``VoiceEncoder`` network, with each LSTM layer a module of its own."""

    def __init__(self, n_mels: int = 40, hidden: int = 256, embedding: int = 256, layers: int = 3) -> None:
        super().__init__()
        self.lstms = torch.nn.ModuleList(
            torch.nn.LSTM(n_mels if i == 0 else hidden, hidden, batch_first=True) for i in range(layers)
        )
        self.linear = torch.nn.Linear(hidden, embedding)

    def load_resemblyzer(self, state: dict[str, torch.Tensor]) -> None:
        """Load ``model_state`` of ``pretrained.pt`` (stacked ``lstm.*_l{i}`` -> ``lstms.{i}.*_l0``)."""
        mapped = {}
        for key, value in state.items():
            if key.startswith("lstm."):
                param, layer = key[len("lstm.") :].rsplit("_l", 1)
                mapped[f"lstms.{layer}.{param}_l0"] = value
            elif key.startswith("linear."):
                mapped[key] = value
        self.load_state_dict(mapped, strict=True)  # similarity_weight/bias (GE2E loss) are dropped

    def forward(self, mels: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``(P, T, n_mels)`` -> per-layer LSTM outputs ``(P, T, hidden)`` and embeddings ``(P, E)``."""
        outputs, h = [], mels
        for lstm in self.lstms:
            h, _ = lstm(h)
            outputs.append(h)
        raw = torch.relu(self.linear(h[:, -1]))
        return outputs, raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)
