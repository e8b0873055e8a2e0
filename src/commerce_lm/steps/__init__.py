"""The pipeline steps: one module or small package per step."""
