"""Pod resources of the steps that do not train (the training steps' come from ``finetune``/``baseline``).

Only the pipeline reads them: no step's section holds them, so changing a request re-runs nothing.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Kubernetes quantities: CPU in cores or millicores, memory in bytes with an optional unit.
CPU_QUANTITY = r"^\d+(\.\d+)?m?$"
MEMORY_QUANTITY = r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"


class PodResources(BaseModel):
    """What one step's pod asks Kubernetes for.

    Attributes:
        cpu: CPU request (``4``, ``500m``). prepare-data normalises text on as many cores as its pod has.
        memory: Memory request and limit (``16Gi``).
    """

    model_config = ConfigDict(extra="forbid")

    cpu: str = Field(default="4", pattern=CPU_QUANTITY)
    memory: str = Field(default="16Gi", pattern=MEMORY_QUANTITY)


class ResourcesConfig(BaseModel):
    """Pod resources per step that does not train."""

    model_config = ConfigDict(extra="forbid")

    prepare_data: PodResources = Field(default_factory=PodResources)
