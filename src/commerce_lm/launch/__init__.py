"""Launchers: ``torchrun`` on this machine (:mod:`.torchrun`) and jobs on several cluster nodes.

:mod:`.cluster` runs a step as a Kubeflow Trainer v2 TrainJob (:mod:`.trainjob`) or a legacy
PyTorchJob (:mod:`.pytorchjob`), both built from a :class:`.jobspec.JobRequest` and followed by
:mod:`.joblife`. Every pod runs the same ``commerce-lm`` command line as any other step.
"""
