"""The demo: a synthetic multilingual listing corpus and a tiny XLM-R for tests."""
