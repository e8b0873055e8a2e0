"""commerce-lm: adapt a multilingual encoder to e-commerce integrity."""

__version__ = "0.1.0"
