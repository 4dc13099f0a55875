"""Duration batches under a padded-seconds budget (features/batching.py)."""

from speechprobe.features.batching import duration_batches


def test_batches_respect_padded_duration_budget():
    durs = [0.5, 3.0, 1.0, 2.5, 0.7, 1.2, 2.9, 0.3]
    batches = list(duration_batches(range(len(durs)), lambda i: durs[i], max_batch_seconds=6.0, buffer_size=4))
    assert sorted(i for b in batches for i in b) == list(range(len(durs)))
    for b in batches:
        assert len(b) == 1 or max(durs[i] for i in b) * len(b) <= 6.0
    # sorted longest-first inside each buffer of 4
    assert batches[0][0] == 1


def test_item_longer_than_budget_gets_its_own_batch():
    batches = list(duration_batches([10.0, 1.0, 1.0], lambda d: d, max_batch_seconds=4.0))
    assert batches == [[10.0], [1.0, 1.0]]
