"""What every emulated service is built from, and what each one hands back to the server wiring."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from .arm import Operations
from .secrets import Identity
from .store import Store


@dataclass
class Context:
    """Shared by the services of one emulator instance.

    ``services`` lets one service reach another's backend (Batch AI mounts Files shares;
    deleting a resource group deletes its Batch AI resources).
    """

    data_dir: Path
    store: Store
    identity: Identity
    arm_url: str
    files_url: str
    operations: Operations
    services: dict = field(default_factory=dict)
    blob_url: str = ""
    aad_url: str = ""                 # the Azure AD token service (https, loopback)
    preemption_rate: float = 0.0      # random preemptions of low-priority nodes, per node-hour
    preemption_seed: Optional[int] = None


@dataclass
class Service:
    """One emulated service: its state (``backend``), its routes and its request handlers."""

    backend: Any
    url_paths: list
    responses: Any
    close: Optional[Callable[[], None]] = None
