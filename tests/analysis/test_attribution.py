"""Attribution to named regions: the region maths, the ground-truth control (a label carried only by a tone in
the F0 band) and the analysis end to end on a run."""

import csv
import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from joblib import parallel_config

from speechprobe.analysis.attribution import (
    average_clip,
    clip_attribution,
    fit_head,
    frame_power,
    grid_of,
    layer_pooled,
    pick_layers,
)
from speechprobe.analysis.regions import REGIONS, TIMES, region_shares, time_regions
from speechprobe.models.attention import encoder_of, watch
from speechprobe.models.registry import load_model
from speechprobe.parallel import single_threaded

RATE = 16000


def test_time_regions_cut_each_voiced_run_into_onset_nucleus_offset():
    power = np.array([0] * 5 + [1] * 8 + [0] * 3 + [1] * 2, dtype=float)
    got = [TIMES[i] for i in time_regions(power)]
    assert got == ["silence"] * 5 + ["onset"] * 2 + ["nucleus"] * 4 + ["offset"] * 2 + ["silence"] * 3 + ["nucleus"] * 2


def test_region_shares_are_net_sums_per_group():
    freqs = np.array([100.0, 200.0, 1000.0, 5000.0])
    attr = np.zeros((4, 3))
    attr[0, 1], attr[1, 1] = 3.0, 1.0  # F0 band, net 4
    attr[2, 0], attr[2, 2] = 5.0, -5.0  # formant band: cancels
    attr[3, 1] = -1.0  # high band, net -1
    shares = dict(zip(REGIONS, region_shares(attr, freqs, np.array([1.0, 1.0, 1.0]))))
    assert shares["f0_band"] == pytest.approx(0.8) and shares["formant_band"] == 0 and shares["high_band"] == 0.2
    # three active frames: onset (frame 0, net 5), nucleus (frame 1, net 3), offset (frame 2, net -5)
    assert [shares[t] for t in TIMES] == pytest.approx([5 / 13, 3 / 13, 5 / 13, 0])


def test_layers_are_spread_over_depth_with_the_best_one():
    assert (
        pick_layers(5, 13, 4) == [0, 5, 8, 12] and pick_layers(7, 13, 1) == [7] and pick_layers(1, 3, 10) == [0, 1, 2]
    )


def test_a_layer_stops_the_forward_early_and_matches_the_whole_forward(tiny_whisper):
    encoder = encoder_of(load_model(str(tiny_whisper), window="trimmed"))
    audio = torch.from_numpy((0.1 * np.random.default_rng(0).standard_normal(9000)).astype(np.float32))
    with torch.no_grad(), watch(encoder) as rec:
        encoder.run(audio)
    n = encoder.frames(len(audio))
    for layer in range(3):  # the last one through the encoder's final layer norm, as the adapter pools it
        whole = rec.layer(layer, encoder.last)[:, :n].mean(dim=1)
        with torch.no_grad():
            torch.testing.assert_close(layer_pooled(encoder, audio, layer, "mean"), whole)
    assert not torch.allclose(rec.layer(2, encoder.last), rec.outputs[1])


def control(kind: str, n_per_class: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """The ground-truth controls, noise (σ 0.02) in every clip and the label carried only by:

    - ``band``: a 150 Hz tone in class ``a`` (the F0 band only);
    - ``onset``: a 150 Hz tone in every clip and, in class ``a``, a 1 kHz burst in its first 12 % (the onset of
      its one voiced run, which is its first quarter)."""
    rng = np.random.default_rng(seed)
    clips, labels = [], np.array(["a", "b"] * n_per_class)
    for label in labels:
        n = int(RATE * rng.uniform(0.5, 0.8))
        t = np.arange(n) / RATE
        y = 0.02 * rng.standard_normal(n) + (
            0.3 * np.sin(2 * np.pi * 150 * t) if kind == "onset" or label == "a" else 0
        )
        if kind == "onset" and label == "a":
            k = int(0.12 * n)
            y[:k] += 0.3 * np.sin(2 * np.pi * 1000 * t[:k])
        clips.append(y.astype(np.float32))
    return clips, labels


def _tiny_wav2vec2(path):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    cfg = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, conv_dim=(16, 16, 16),
        conv_stride=(5, 4, 16), conv_kernel=(10, 4, 16), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
    )  # fmt: skip
    Wav2Vec2Model(cfg).save_pretrained(path)
    return path


def control_shares(path, kind: str, region: str) -> list[tuple[float, list[float]]]:
    """Per layer of the model at ``path`` on control ``kind``: a linear head's accuracy on 4 held-out clips
    (fitted on 12) and the share of ``region`` in each held-out clip's attribution (8 steps)."""
    clips, labels = control(kind, 8)
    encoder = encoder_of(load_model(str(path), window="trimmed"))
    with single_threaded(), torch.no_grad():  # as the analysis runs on a CPU
        feats = np.stack(
            [[layer_pooled(encoder, torch.from_numpy(c), i, "mean")[0].numpy() for i in range(3)] for c in clips]
        )
    baseline, (freqs, hop) = average_clip(clips, encoder), grid_of(encoder, RATE)
    out = []
    for layer in range(3):
        classes, head = fit_head(feats[:12, layer].astype(float), labels[:12])
        with torch.no_grad():
            pred = head(torch.tensor(feats[12:, layer], dtype=torch.float32)).argmax(-1).numpy()
        with single_threaded():
            attrs = [clip_attribution(encoder, c, layer, head, classes.index(y), "mean", 8, baseline)[1]
                     for c, y in zip(clips[12:], labels[12:])]  # fmt: skip
        powers = [frame_power(c, hop, attr.shape[1]) for c, attr in zip(clips[12:], attrs)]
        shares = [float(region_shares(a, freqs, p)[REGIONS.index(region)]) for a, p in zip(attrs, powers)]
        out.append((float(np.mean(pred == [classes.index(y) for y in labels[12:]])), shares))
        print(
            f"{kind} control, {path.name} layer {layer}: {region} share {np.mean(shares):.2f} ({np.round(shares, 2)})"
        )
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "region", "family"), [("band", "f0_band", "whisper"), ("onset", "onset", "wav2vec2")])
def test_ground_truth_the_region_that_carries_the_label_carries_the_attribution(
    kind, region, family, tiny_whisper, tmp_path
):
    """Where a held-out linear head succeeds, at least 60 % of the attribution lies in the region that carries the
    label (docs/analyses.md states the shares measured here, and the other families' and controls'). Whisper's
    is on its own log-mel input, wav2vec2's on the STFT magnitudes under its waveform."""
    path = tiny_whisper if family == "whisper" else _tiny_wav2vec2(tmp_path / family)
    for layer, (accuracy, shares) in enumerate(control_shares(path, kind, region)):
        assert accuracy == 1.0  # the probe succeeds (held out)
        assert np.mean(shares) >= 0.6, (layer, shares)


@pytest.mark.slow
def test_attribution_and_context_mixing_on_a_run(tiny_whisper, tmp_path):
    """Both analyses from a run directory: clips re-read from the task's source, the model re-loaded from its
    folder, tables, figures, findings; the erasure sentence when erasure_summary.csv has the layer."""
    from speechprobe.analysis import analyse_features, store_loader
    from speechprobe.config import RunConfig
    from speechprobe.pipeline import run

    clips, labels = control("band", 8)
    root = tmp_path / "tones"
    root.mkdir()
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "group"])
        for i, (c, y) in enumerate(zip(clips, labels)):
            sf.write(root / f"{i}.wav", c, RATE)
            w.writerow([f"{i}.wav", y, f"spk{i % 4}"])
    out = tmp_path / "run"
    off = dict(cue_probes=False, layer_weights=False, fingerprints=False, similarity=False, mdl=False)
    cfg = RunConfig.of(
        models=[str(tiny_whisper)], tasks=[str(root / "manifest.csv")], out=out, folds=2, baselines=[],
        window="trimmed", probes=["knn"], progress=False, permutations=0, embeddings=False, report=False,
        analyses="+context_mixing", mixing_clips=2, mixing_frames=8, mixing_seconds=0.4, **off,
    )  # fmt: skip
    run(cfg)
    mixing = pd.read_csv(out / "mixing.csv")
    assert set(mixing["class"]) == {"all", "a", "b"} and len(mixing) == 3 * 2 * 4  # classes x blocks x metrics
    assert (mixing["n_clips"][mixing["class"] == "all"] == 2).all() and np.isfinite(mixing["mean"]).all()
    assert (mixing["n_units"][mixing["class"] == "all"] == 2).all() and (mixing["unit"] == "group").all()
    assert (mixing["query_frames"] == 8).all()  # a stratified sample of 8 query frames per clip
    handed = json.loads((out / "analyses" / "context_mixing.json").read_text())
    assert "the mean attention distance runs from" in handed["findings"][0]
    assert "95 % t intervals over 2 groups (2 clips)" in handed["findings"][0]
    assert (out / handed["figures"][0]["path"]).is_file()
    serial = (out / "mixing.csv").read_bytes()
    assert "each on its centred 0.4 s at most" in handed["figures"][0]["caption"]  # the clips' window
    mixing_options = {"context_mixing": {"clips": 2, "frames": 8, "seconds": 0.4}}
    with parallel_config(backend="multiprocessing"):  # forked workers: the loky ones' start (torch imported) costs 10 s
        analyse_features(
            out, store_loader(out), analyses=["context_mixing"], reuse=False, n_jobs=2, options=mixing_options
        )
    assert (out / "mixing.csv").read_bytes() == serial  # its clips split over 2 worker processes: the same values
    spec = json.loads((out / handed["figures"][0]["path"]).with_suffix(".plotly.json").read_text())
    assert len(spec["data"]) == 2 and spec["data"][0]["yaxis"] == "y" and spec["data"][1]["yaxis"] == "y2"

    model, task = mixing["model"].iloc[0], mixing["task"].iloc[0]
    erasure = pd.DataFrame([dict(task=task, model=model, target="f0", layer=layer, probe="knn", best=True,
                                 macro_f1=0.5, delta=-0.25, lo=-0.3, hi=-0.2, n=4) for layer in range(3)])  # fmt: skip
    erasure.to_csv(out / "erasure_summary.csv", index=False)
    options = {"attribution": {"clips": 2, "steps": 4, "layers": 1}}
    analyse_features(out, store_loader(out), analyses=["attribution"], options=options)
    table = pd.read_csv(out / "attribution.csv")
    assert len(table) == 3 * len(REGIONS) and (table["layer"] == table["best_layer"]).all()
    sums = table[table["class"] == "all"].set_index("region")["mean"]
    assert sums[["f0_band", "formant_band", "high_band"]].sum() == pytest.approx(1.0)
    handed = json.loads((out / "analyses" / "attribution.json").read_text())
    assert "erasing F0 changes its Macro-F1 at that layer by -0.25" in handed["findings"][0]
    assert len(handed["figures"]) == 2
    heat = json.loads((out / "figures" / f"attribution_{task}.plotly.json").read_text())["data"][0]
    assert len(heat["z"]) == len(REGIONS) and heat["x"] == [f"{model} · {table['best_layer'].iloc[0]}*"]
    two = {"attribution": {"clips": 2, "steps": 4, "layers": 2}}  # two jobs, one per worker
    analyse_features(out, store_loader(out), analyses=["attribution"], reuse=False, options=two)
    serial = (out / "attribution.csv").read_bytes()
    with parallel_config(backend="multiprocessing"):
        analyse_features(out, store_loader(out), analyses=["attribution"], reuse=False, n_jobs=2, options=two)
    assert (out / "attribution.csv").read_bytes() == serial and len(
        pd.read_csv(out / "attribution.csv")
    ) == 2 * 3 * len(REGIONS)
    handed = json.loads((out / "analyses" / "attribution.json").read_text())
    examples = [f for f in handed["figures"] if "attribution_examples" in f["path"]]  # drawn in the best layer's job
    assert len(examples) == 1 and (out / examples[0]["path"]).is_file() and "Example clips" in examples[0]["caption"]


def test_seamless_is_attributed_on_its_stacked_fbanks_mapped_to_hz_and_10_ms_frames(tmp_path):
    from test_mixing import _tiny

    encoder = encoder_of(load_model(str(_tiny("seamless", tmp_path / "seamless")), window="trimmed"))
    clips, labels = control("onset", 2)
    x = encoder.front.inputs(torch.from_numpy(clips[0]))
    grid = encoder.front.grid(x)  # the two stacked 10 ms frames side by side again
    assert x.shape[2] == 160 and grid.shape == (80, 2 * x.shape[1]) and encoder.front.frame_s == 0.01
    np.testing.assert_array_equal(grid[:, 2], x[0, 1, :80].numpy()) and np.testing.assert_array_equal(
        grid[:, 3], x[0, 1, 80:].numpy()
    )
    hz = encoder.front.hz
    assert (np.diff(hz) > 0).all() and 20 < hz[0] < 100 and 7000 < hz[-1] < 8000 and (hz < 300).sum() >= 4
    _, head = fit_head(np.random.default_rng(0).standard_normal((4, 16)), np.array(["a", "b"] * 2))
    with single_threaded():
        image, attr = clip_attribution(encoder, clips[0], 2, head, 0, "mean", 4, average_clip(clips, encoder))
    assert attr.shape == image.shape == grid.shape and np.isfinite(attr).all() and np.abs(attr).sum() > 0
