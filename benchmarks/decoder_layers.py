"""Inside the decoder, measured: the logit lens against the native head, and what the decoder states cost.

    python benchmarks/decoder_layers.py lens               # whisper-base, language, 16 clips per class, 30 s window
    python benchmarks/decoder_layers.py lens --task emotion --prompt question
    python benchmarks/decoder_layers.py cost --clips 16    # decoder states vs encoder-only extraction

``lens``: a zero-shot run (``--decoder-states``, modes ``native`` and ``likelihood_bc``, one prompt), then per
decoder layer the logit lens's pick (raw and batch-calibrated, :mod:`speechprobe.analysis.decoder_layers`) scored
by accuracy and Macro-F1, with 95 % bootstrap intervals over clips (voices when the task has them), beside the
native language-ID head's; then the lens at the native head's own position (the decoder after
``<|startoftranscript|>``, over the labels' language tokens; its last layer is the head itself, restricted to
the task's languages). The check: that lens at the last decoder layer reaches the native head's accuracy within
its interval (the intervals overlap); the first layer whose lens is above chance is where the label becomes
decodable. Exit status 1 when the check fails.

``cost``: on the same clips, in this process, after a warm-up: encoder-only extraction (every layer pooled into a
fresh feature store, ``features.extract``), the encoder alone (``backend.encode``), and the decoder-states pass on
that encoding (:func:`speechprobe.zeroshot.decoder_states.decoder_records`: one prefix pass per clip with every
layer kept, plus the lens); prints each time and the ratios to extraction.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _interval(values: np.ndarray) -> str:
    lo, hi = np.percentile(values[1:], [2.5, 97.5])
    return f"{values[0]:.3f} [{lo:.3f}, {hi:.3f}]"


def _scores(y: np.ndarray, pred: np.ndarray, weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(accuracy, Macro-F1) observed (index 0) then under each row of clip weights."""
    from speechprobe.analysis.bootstrap import _f1

    w = np.vstack([np.ones(len(y)), weights])
    eye = np.eye(k)
    hit = eye[pred] * (pred == y)[:, None]
    acc = (w @ (pred == y)) / w.sum(1)
    return acc, _f1(w @ hit, w @ eye[y], w @ eye[pred])


def lens(args) -> int:
    import pandas as pd

    from speechprobe.analysis.bootstrap import resample_weights
    from speechprobe.analysis.decoder_layers import batch_calibrated, lens_label_scores
    from speechprobe.analysis.summary import chance_levels
    from speechprobe.features.store import FeatureSpace
    from speechprobe.zeroshot import ZeroShotConfig, run_zeroshot

    out = Path(tempfile.mkdtemp(prefix="decoder-lens-"))
    cfg = ZeroShotConfig(
        models=[args.model],
        tasks=[args.task],
        out=out,
        n_per_class=args.n_per_class,
        prompts=[args.prompt],
        modes=["native", "likelihood_bc"],
        decoder_states=True,
        window=args.window,
        cache=args.cache,
        progress=False,
    )
    t0 = time.perf_counter()
    run_zeroshot(cfg)
    took = time.perf_counter() - t0
    by_model = json.loads((out / "manifest.json").read_text())["zeroshot"]["tasks"][args.task]["by_model"]
    info = by_model[args.model]["decoder"]
    responses = pd.read_csv(out / "zeroshot" / args.model / f"{args.task}.csv", dtype=str, keep_default_na=False)
    order = {x: i for i, x in enumerate(info["labels"])}
    k = len(order)
    clips = responses[responses["mode"] == "likelihood_bc"].drop_duplicates("content_hash")
    y = np.array([order[x] for x in clips["label"]])
    groups = clips["group"].to_numpy() if clips["group"].astype(bool).all() else None
    weights, unit = resample_weights(y, groups, args.boot, 0)
    store = FeatureSpace(Path(info["store"]) / info["spaces"]["lens"], {})
    items = store.gather(list(clips["content_hash"]))
    scores = lens_label_scores(items, info["phrasings"])
    chance = chance_levels(list(clips["label"]))
    print(f"{args.model} · {args.task} · prompt {args.prompt!r} · {len(y)} clips · {args.window} window")
    print(f"zero-shot run with decoder states: {took:.1f} s; bootstrap unit: {unit}; chance accuracy {1 / k:.2f}")
    print("| decoder layer | lens acc | lens Macro-F1 | lens (batch-calibrated) acc | (batch-calibrated) Macro-F1 |")
    print("|---|---|---|---|---|")
    decodable, last = None, None
    for d in range(items.shape[1]):
        raw = _scores(y, scores[:, d].argmax(-1), weights, k)
        cal = _scores(y, batch_calibrated(scores)[:, d].argmax(-1), weights, k)
        cells = [_interval(v) for v in (*raw, *cal)]
        print(f"| dec{d} | " + " | ".join(cells) + " |")
        if decodable is None and np.percentile(cal[1][1:], 2.5) > chance["macro_f1"]:
            decodable = d
        last = cal
    native = responses[responses["mode"] == "native"].drop_duplicates("content_hash")
    if native.empty:
        print("no native head for this task")
        return 0
    pred = np.array([order.get(x, -1) for x in native["prediction"]])
    acc, f1 = _scores(y, np.where(pred < 0, 0, pred), weights, k)
    print(f"| native head | {_interval(acc)} | {_interval(f1)} | | |")
    where = f"dec{decodable}" if decodable is not None else "no layer"
    print(f"prompted lens above chance (Macro-F1, 95% interval) from: {where}")
    print(f"prompted lens at the last layer vs native accuracy: {_verdict(last[0], acc)}")
    native_lens = _native_position_lens(args, clips, info["labels"])
    print("lens at the native head's position (after <|startoftranscript|>, over the labels' language tokens):")
    print("| decoder layer | accuracy | Macro-F1 |")
    print("|---|---|---|")
    for d in range(native_lens.shape[1]):
        a, f = _scores(y, native_lens[:, d].argmax(-1), weights, k)
        print(f"| dec{d} | {_interval(a)} | {_interval(f)} |")
    a, _ = _scores(y, native_lens[:, -1].argmax(-1), weights, k)
    verdict = _verdict(a, acc)
    print(f"native-position lens at the last layer vs the native head's accuracy: {verdict}")
    return 0 if verdict.startswith("intervals overlap") else 1


def _verdict(lens_acc: np.ndarray, native_acc: np.ndarray) -> str:
    lo_n, hi_n = np.percentile(native_acc[1:], [2.5, 97.5])
    lo_l, hi_l = np.percentile(lens_acc[1:], [2.5, 97.5])
    same = hi_l >= lo_n and lo_l <= hi_n
    return f"intervals {'overlap' if same else 'do NOT overlap'} ({lens_acc[0]:.3f} vs {native_acc[0]:.3f})"


def _native_position_lens(args, clips, labels) -> np.ndarray:
    """(clips, layers, labels) lens log-probabilities of the labels' language tokens at the position the native
    language-ID head reads (the decoder after <|startoftranscript|> alone); its last layer is that head."""
    import torch

    from speechprobe.cache import cache_root
    from speechprobe.data.audio import resample
    from speechprobe.data.resolve import open_task
    from speechprobe.zeroshot import load_backend
    from speechprobe.zeroshot.native import native_targets

    task, source = open_task(args.task, cache_root(args.cache), seed=0, n_per_class=args.n_per_class)
    audio = {c.content_hash: c for c in source}
    backend = load_backend(args.model, window=args.window, batch_size=8)
    table = native_targets(backend.native_heads(), task)[0]["language-id"]
    ids = [backend._languages[table[x]] for x in labels]
    hashes = list(clips["content_hash"])
    out = []
    with torch.inference_mode():
        for i in range(0, len(hashes), 8):
            batch = [audio[h] for h in hashes[i : i + 8]]
            enc = backend.encode([resample(c.audio, c.sample_rate, backend.sample_rate) for c in batch])
            sot = torch.full((len(batch), 1), backend.ids["<|startoftranscript|>"], dtype=torch.long)
            states = backend.decoder(
                input_ids=sot, encoder_hidden_states=enc.tensors["hidden"], output_hidden_states=True
            )
            out.append(backend.lens(backend.layer_states(states)[:, :, -1])[..., ids].numpy())
    return np.concatenate(out)


def cost(args) -> int:
    import torch
    from bench_zeroshot import _clips

    from speechprobe.data.audio import resample
    from speechprobe.zeroshot import load_backend
    from speechprobe.zeroshot.decoder_states import decoder_records
    from speechprobe.zeroshot.prompts import PromptTemplate
    from speechprobe.zeroshot.responses import verbalised
    from speechprobe.zeroshot.scoring import label_tokens

    task, clips = _clips(args.task, args.clips, args.cache)
    words = verbalised(task)
    prompt = PromptTemplate("choose", "Choose one of: {labels}.", "bench").render(
        task.name, [f[0] for f in words.phrasings]
    )
    backend = load_backend(args.model, batch_size=8, window=args.window)
    audios = [resample(c.audio, c.sample_rate, backend.sample_rate) for c in clips]
    firsts = [t[0] for t in label_tokens(backend, words.flat)]
    batches = [audios[i : i + 8] for i in range(0, len(audios), 8)]
    with torch.inference_mode():
        decoder_records(backend, backend.encode(audios[:1]), [prompt], firsts)  # warm-up
        t_enc = t_dec = 0.0
        for batch in batches:
            t0 = time.perf_counter()
            enc = backend.encode(batch)
            t1 = time.perf_counter()
            decoder_records(backend, enc, [prompt] * len(batch), firsts)
            t_enc, t_dec = t_enc + t1 - t0, t_dec + time.perf_counter() - t1
    t_extract = _extraction(args.model, clips, args.window, 120.0 if args.window == "full" else 60.0)
    threads = torch.get_num_threads()
    print(f"{backend.name} ({args.window} window), {len(clips)} clips of {task.name}, cpu ({threads} threads)")
    print(f"encoder-only extraction (all layers, pooled) : {t_extract:7.2f} s")
    print(f"encoder alone (backend.encode)               : {t_enc:7.2f} s")
    print(f"decoder states + lens on that encoding       : {t_dec:7.2f} s -> {t_dec / t_extract:5.2f}x extraction")
    print(
        f"encode + decoder states                      : {t_enc + t_dec:7.2f} s -> {(t_enc + t_dec) / t_extract:5.2f}x"
    )
    return 0


def _extraction(model: str, clips, window: str, batch_seconds: float) -> float:
    """Seconds of encoder-only extraction of ``clips`` (every layer, pooled) into a fresh store, after a warm-up."""
    from speechprobe.features.extract import extract
    from speechprobe.features.store import FeatureStore
    from speechprobe.models.registry import load_model

    adapter = load_model(model, window=window)
    took = 0.0
    for part in (clips[:2], clips):  # warm-up, then the timed pass
        with tempfile.TemporaryDirectory() as tmp:
            space = FeatureStore(tmp).space(model, adapter.info.revision, adapter.options())
            t0 = time.perf_counter()
            extract(adapter, part, space, max_batch_seconds=batch_seconds)
            took = time.perf_counter() - t0
    return took


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["lens", "cost"])
    ap.add_argument("--model", default="whisper-base")
    ap.add_argument("--task", default=None, help="default: language (lens), spoken_word (cost)")
    ap.add_argument("--prompt", default="choose")
    ap.add_argument("--n-per-class", type=int, default=16)
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--window", default="full", choices=["full", "trimmed"])
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--cache", type=Path, default=None, help="speechprobe cache (synthetic clips, converted weights)")
    args = ap.parse_args(argv)
    args.task = args.task or ("language" if args.what == "lens" else "spoken_word")
    return lens(args) if args.what == "lens" else cost(args)


if __name__ == "__main__":
    sys.exit(main())
