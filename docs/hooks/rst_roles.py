"""Griffe extension: Sphinx cross-reference roles in docstrings become inline code.

gmem's docstrings name other objects the way Sphinx does (``:class:`MemoryConfig```),
which Markdown would print literally. Rendering them as code keeps the docstrings as they
are for ``help()`` and IDEs, and cannot break the strict build the way an unresolved
link would.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|exc|data|obj|const):`~?([^`]+)`")


def plain_roles(text: str) -> str:
    """``:class:`X``` -> ```X```, ``:meth:`~a.b.c``` -> ```a.b.c```."""
    return _ROLE.sub(r"`\1`", text)


class SphinxRolesAsCode(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **_: Any) -> None:  # griffe passes more by keyword
        if obj.docstring is not None:
            obj.docstring.value = plain_roles(obj.docstring.value)
