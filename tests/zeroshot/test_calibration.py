"""Phrasing averages, content-free inputs and the calibrated modes, on numbers worked by hand."""

from __future__ import annotations

import numpy as np

from speechprobe.zeroshot import Verbalised, calibrated, content_free_inputs
from speechprobe.zeroshot.calibration import batch_prior, label_log_shares, prior_match


def test_phrasings_are_averaged_as_probabilities():
    words = Verbalised(("close", "far"), (("close", "close, about 40 cm"), ("far",)))
    assert words.flat == ("close", "close, about 40 cm", "far")
    got = words.label_scores([np.log(0.2), np.log(0.01), np.log(0.05)])
    np.testing.assert_allclose(got, np.log([(0.2 + 0.01) / 2, 0.05]))
    both = words.likelihoods(raw=[-2.0, -6.0, -3.0], n_tokens=[2, 6, 3])
    np.testing.assert_allclose(both["likelihood"], [np.log((np.exp(-1) + np.exp(-1)) / 2), -1.0])
    np.testing.assert_allclose(both["likelihood_raw"], [np.log((np.exp(-2) + np.exp(-6)) / 2), -3.0])


def test_calibration_removes_a_label_prior():
    # The decoder prefers "english" by 3 nats whatever it hears; this clip's evidence favours "german" by 1 nat.
    prior = np.array([3.0, 0.0, 0.0])
    clip = prior + np.array([0.0, 1.0, 0.0]) - 5.0
    content_free = np.stack([prior - 7.0, prior - 9.0])
    assert int(np.argmax(clip)) == 0  # raw likelihood: the prior wins
    got = calibrated(clip, content_free)
    assert int(np.argmax(got["likelihood_cc"])) == 1 and int(np.argmax(got["likelihood_pmi"])) == 1
    # CC: log softmax(clip) - log mean softmax(content-free); both content-free rows share one softmax here
    p_cf = np.exp(prior) / np.exp(prior).sum()
    log_p = clip - np.log(np.exp(clip).sum())
    np.testing.assert_allclose(got["likelihood_cc"], log_p - np.log(p_cf))
    # PMI: the raw score minus the log of the mean content-free probability of each label
    np.testing.assert_allclose(got["likelihood_pmi"], clip - np.log((np.exp(prior - 7) + np.exp(prior - 9)) / 2))


def test_cc_and_pmi_differ_only_in_how_content_free_inputs_are_pooled():
    clip = np.array([-4.0, -5.0, -6.0])
    one = np.array([[-1.0, -3.0, -2.0]])
    a = calibrated(clip, one)
    assert np.argmax(a["likelihood_cc"]) == np.argmax(a["likelihood_pmi"])  # one input: the same prediction
    np.testing.assert_allclose(np.diff(a["likelihood_cc"]), np.diff(a["likelihood_pmi"]))
    two = np.array([[-1.0, -9.0, -9.0], [-30.0, -20.0, -31.0]])  # the second input is far less likely overall
    b = calibrated(np.array([-5.0, -5.0, -8.5]), two)
    # PMI's marginal is dominated by the likely first input; CC weighs both inputs' label shares equally
    assert np.argmax(b["likelihood_pmi"]) == 1 and np.argmax(b["likelihood_cc"]) == 2


def test_content_free_inputs():
    inputs = content_free_inputs(16000)
    assert [c.name for c in inputs] == ["silence", "noise-60dBFS", "noise-40dBFS"]
    assert all(len(c.audio) == 32000 and c.audio.dtype == np.float32 for c in inputs)
    assert not inputs[0].audio.any()
    rms = [float(np.sqrt(np.mean(c.audio.astype(np.float64) ** 2))) for c in inputs[1:]]
    np.testing.assert_allclose(rms, [1e-3, 1e-2], rtol=0.02)
    again = content_free_inputs(16000, accepts_no_audio=True)
    assert np.array_equal(again[1].audio, inputs[1].audio)  # seeded: the same inputs, the same cache keys
    assert again[-1].name == "no-audio" and len(again[-1].audio) == 0


def test_batch_calibration_prior_is_the_mean_label_distribution_of_the_clips():
    raw = np.log(np.array([[0.6, 0.3, 0.1], [0.5, 0.1, 0.4], [0.7, 0.2, 0.1]])) - 4.0  # every clip leans to label 0
    prior = batch_prior(raw)
    np.testing.assert_allclose(np.exp(prior), [0.6, 0.2, 0.2])
    calibrated_scores = label_log_shares(raw) - prior
    assert list(calibrated_scores.argmax(1)) == [1, 2, 0]  # each clip's label, relative to the set's lean


def _pm_shares(raw, target=None):
    return np.exp(label_log_shares(raw + prior_match(raw, target)))


def test_prior_matching_em_reaches_the_target_and_recovers_labels_under_a_decoder_bias():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(3), 20)
    evidence = 1.5 * np.eye(3)[truth] + rng.normal(0, 0.5, (60, 3))  # each clip leans to its own label
    raw = evidence + np.array([4.0, 0.0, -1.0]) - 7.0  # the decoder likes label 0 by 4 nats, label 2 less
    assert (raw.argmax(1) == 0).mean() > 0.9  # raw scores collapse onto label 0
    p = _pm_shares(raw)
    np.testing.assert_allclose(p.mean(0), [1 / 3] * 3, atol=1e-6)  # the EM fixed point: the uniform target
    assert (p.argmax(1) == truth).mean() > 0.85
    target = np.array([0.5, 0.3, 0.2])
    np.testing.assert_allclose(_pm_shares(raw, target * 7).mean(0), target, atol=1e-6)  # any scale of target
    # batch calibration is the first EM step from uniform weights
    one = prior_match(raw, max_iter=1)
    np.testing.assert_allclose(one, -(batch_prior(raw) - batch_prior(raw).mean()), atol=1e-12)
    assert not np.allclose(one, prior_match(raw))  # ...and the fit goes on from there


def test_prior_matching_is_invariant_to_label_offsets_clip_offsets_and_clip_order():
    rng = np.random.default_rng(1)
    raw = rng.normal(0, 2, (40, 4))
    base = _pm_shares(raw)
    shifted = raw + np.array([3.0, -2.0, 0.5, 0.0]) + rng.normal(0, 5, (40, 1))  # per-label taste, per-clip level
    np.testing.assert_allclose(_pm_shares(shifted), base, atol=1e-6)
    order = rng.permutation(40)
    np.testing.assert_allclose(prior_match(raw[order]), prior_match(raw), atol=1e-9)
