"""superintendent: a multi-user labelling server with active learning.

``from superintendent import Superintendent`` gives the Python API; the
layers below it are importable on their own (see docs/ and DESIGN.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "1.0.0.dev0"
__all__ = ["Superintendent", "__version__"]

if TYPE_CHECKING:
    from superintendent.core import Superintendent


def __getattr__(name: str) -> Any:
    # Imported on first use, so `import superintendent.acquisition_functions` stays light.
    if name == "Superintendent":
        from superintendent.core import Superintendent

        return Superintendent
    raise AttributeError(f"module 'superintendent' has no attribute {name!r}")
