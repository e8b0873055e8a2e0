"""KFP component: prepare-data."""

from commerce_lm_components.images import CPU_IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Output


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def prepare_data(config_json: str, code_version: str, prepared: Output[Dataset]):
    """Validate, normalise, de-duplicate and split every dataset (``code_version`` keys the cache)."""
    from commerce_lm import config
    from commerce_lm.steps import prepare_data

    prepared.metadata.update(prepare_data.run(config.config_from_json(config_json), prepared.path))
