"""The compiled pipeline, for the tests that read its IR."""

import copy

import pytest

from tests.helpers.ir import compiled


@pytest.fixture(scope="module")
def ir_documents():
    """The compiled IR as ``commerce-lm compile`` writes it: the pipeline spec and the platform spec."""
    return compiled()


@pytest.fixture(scope="module")
def ir(ir_documents):
    """The compiled IR: the pipeline spec and the Kubernetes platform's executors."""
    spec, platform = copy.deepcopy(ir_documents)
    return spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
