"""Engines that read input data, shared by prepare-data and scoring.

Readers for Parquet, CSV and JSONL, canonical values and row parsing, rejected rows, deterministic
splits, and new listings to score.
"""
