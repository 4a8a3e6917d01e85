"""The curated environment catalogue every workspace reads (``AzureML-*``): names, versions, images and
conda specifications as Microsoft publishes them (the Azure/azureml-assets repository and the Azure ML
documentation and samples), in this module's own form.

Only the environments that azure-ai-ml's samples and documentation and this project's quickstart name
are listed. A curated environment is a prebuilt image on the service, so a job on one runs with the
emulator's own interpreter: nothing is installed for it (environments.py builds custom ones only).
Versions run from 1 to ``latest``, the highest version seen in Microsoft's published material; the
image tag of version N is N.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

PREFIX = "AzureML-"
MCR = "mcr.microsoft.com/azureml/curated/"


@dataclass(frozen=True)
class Curated:
    repository: str               # the image repository on mcr.microsoft.com
    latest: int                   # versions are "1" .. str(latest)
    description: str
    tags: dict = field(default_factory=dict)
    conda: Optional[str] = None   # the conda specification, for environments built from one


_SKLEARN_10 = """name: sklearn-1.0
channels:
- conda-forge
dependencies:
- python=3.8
- pip=21.3.1
- pip:
  - scikit-learn~=1.0.0
  - azureml-core
  - azureml-defaults
  - azureml-mlflow
  - azureml-telemetry
  - joblib~=1.2.0
  - matplotlib~=3.5.0
  - psutil~=5.8.0
  - tqdm
"""

_SKLEARN_024 = """name: sklearn-0.24
channels:
- conda-forge
dependencies:
- python=3.7
- pip
- pip:
  - scikit-learn==0.24.1
  - azureml-core
  - azureml-defaults
  - azureml-mlflow
  - azureml-telemetry
  - joblib
"""

_PYTORCH_19 = """name: pytorch-1.9
channels:
- conda-forge
dependencies:
- python=3.7
- pip
- pip:
  - torch==1.9.0
  - torchvision==0.10.0
  - azureml-core
  - azureml-defaults
  - azureml-mlflow
  - tensorboard
"""

CATALOGUE = {
    # The quickstart's environment (how-to-train-pytorch, current revision); built from a Dockerfile.
    "AzureML-acpt-pytorch-2.8-cuda12.6": Curated(
        MCR + "acpt-pytorch-2.8-cuda12.6", 13,
        "Training environment for Deep Learning with PyTorch 2.8 on Azure ML (CUDA 12.6, Python 3.10, DeepSpeed).",
        {"PyTorch": "2.8", "GPU": "Cuda12", "OS": "Ubuntu24.04", "Training": "", "Preview": "", "Python": "3.10",
         "DeepSpeed": ""}),
    # how-to-train-pytorch, previous revision.
    "AzureML-acpt-pytorch-2.2-cuda12.1": Curated(
        MCR + "acpt-pytorch-2.2-cuda12.1", 1,
        "Training environment for Deep Learning with PyTorch 2.2 on Azure ML (CUDA 12.1).",
        {"PyTorch": "2.2", "GPU": "Cuda12", "Training": ""}),
    # azure-ai-ml's samples (versions 1 and 33 are named there) and many tutorials.
    "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu": Curated(
        MCR + "sklearn-1.0-ubuntu20.04-py38-cpu", 33,
        "An environment for tasks such as regression, clustering, and classification with Scikit-learn.",
        {"Scikit-learn": "1.0", "OS": "Ubuntu20.04", "Training": "", "Python": "3.8"}, _SKLEARN_10),
    # azure-ai-ml's own constants and older samples.
    "AzureML-sklearn-0.24-ubuntu18.04-py37-cpu": Curated(
        MCR + "sklearn-0.24-ubuntu18.04-py37-cpu", 1,
        "An environment for tasks such as regression, clustering, and classification with Scikit-learn 0.24.",
        {"Scikit-learn": "0.24", "OS": "Ubuntu18.04", "Training": "", "Python": "3.7"}, _SKLEARN_024),
    # azureml-examples' older PyTorch notebooks.
    "AzureML-pytorch-1.9-ubuntu18.04-py37-cuda11-gpu": Curated(
        MCR + "pytorch-1.9-ubuntu18.04-py37-cuda11-gpu", 1,
        "An environment for deep learning with PyTorch 1.9 containing the Azure ML Python SDK.",
        {"PyTorch": "1.9", "GPU": "Cuda11", "OS": "Ubuntu18.04", "Training": "", "Python": "3.7"}, _PYTORCH_19),
}

_BY_LOWER = {name.lower(): name for name in CATALOGUE}


def find(name: str) -> Optional[str]:
    """The catalogue's spelling of a curated environment name (names match case-insensitively), or None."""
    return _BY_LOWER.get(name.lower())


def versions(name: str) -> list:
    """The versions of a curated environment, oldest first."""
    return [str(number) for number in range(1, CATALOGUE[name].latest + 1)]


def has_version(name: str, version: str) -> bool:
    return version.isdigit() and 1 <= int(version) <= CATALOGUE[name].latest


def version_properties(name: str, version: str) -> dict:
    """An EnvironmentVersion's ``properties`` as the service shows a curated one."""
    entry = CATALOGUE[name]
    properties = {"image": "{}:{}".format(entry.repository, version), "osType": "Linux",
                  "environmentType": "Curated", "description": entry.description, "tags": dict(entry.tags),
                  "properties": {}, "isAnonymous": False, "isArchived": False, "autoRebuild": "Disabled",
                  "provisioningState": "Succeeded"}
    if entry.conda:
        properties["condaFile"] = entry.conda
    return properties


def container_properties(name: str) -> dict:
    entry = CATALOGUE[name]
    return {"description": entry.description, "tags": dict(entry.tags), "properties": {}, "isArchived": False,
            "latestVersion": str(entry.latest), "nextVersion": str(entry.latest + 1),
            "provisioningState": "Succeeded"}
