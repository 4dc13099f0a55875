"""Feature stage: pooling, duration batching, the content-keyed feature store and extraction."""
