"""KFP component: prepare-data, for one part of the data (the domain, the datasets, or one task)."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from commerce_lm_components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def prepare_data(section_json: str, code_version: str, prepared: Output[Dataset]):
    """Validate, normalise, de-duplicate and split the datasets ``section_json`` names."""
    from commerce_lm.cli.runtime import run_step

    prepared.metadata.update(run_step("prepare-data", section_json, prepared.path))
