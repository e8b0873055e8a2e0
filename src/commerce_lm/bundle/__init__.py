"""Bundles: a trained encoder with its heads, thresholds and reference indexes, as ``score`` applies them.

:mod:`~commerce_lm.bundle.layout` names the files and checks the manifest, :mod:`~.read` opens a
bundle, :mod:`~.apply` scores vectors with it, :mod:`~.card` writes the encoder's model card,
:mod:`~.registry` publishes bundles and moves the live pointer, :mod:`~.gate` decides whether a
retrained bundle may replace the live one.
"""
