"""The pipeline steps, one module (or small package) each; no step imports another.

Each step reads and writes only files (names in :mod:`commerce_lm.names`) and is driven by the
``commerce-lm`` CLI or by a KFP component.
"""
