"""Engines that read input data: readers for Parquet, CSV and JSONL, and deterministic splits."""
