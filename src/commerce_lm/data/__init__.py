"""Engines that read input data: row values and their normalisation, and listings to score."""
