"""Feature stage: duration batching, the content-keyed feature store and extraction."""
