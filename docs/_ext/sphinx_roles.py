"""Griffe extension: read the reST bits of the project's numpy docstrings as Markdown.

The docstrings are written for numpydoc (Sphinx roles such as :func:`simulate` and
:class:`~turbsim.SimConfig`, literal blocks introduced by ``::``). mkdocstrings renders
docstrings as Markdown, so before rendering this extension

* turns every role into a cross-reference that is *optional*: a link when the target is
  documented on the site, plain code otherwise (never a warning, so ``--strict`` holds);
* drops the ``::`` that introduces a literal block (the indented block that follows is
  already a Markdown code block), as Sphinx does.

Targets are resolved as Sphinx would: ``~a.b.c`` shows ``c``; ``.name`` is relative to the
current package; a bare name is looked up in the current class, then the current module.
The source files are not changed.
"""
from __future__ import annotations

import re

from griffe import Extension, Object

_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|exc|obj|const):`(?P<target>[^`]+)`")
_LITERAL = re.compile(r"(?m)(\S)::$")
_BARE_LITERAL = re.compile(r"(?m)^[ \t]*::[ \t]*$\n?")
_PACKAGES = ("turbsim", "learn")


def _identifier(target: str, obj: Object) -> str:
    module = obj.module
    if target.startswith("."):
        package = module if module.is_package else module.parent
        return f"{package.path}{target}" if package is not None else target.lstrip(".")
    head = target.split(".", 1)[0]
    if head in _PACKAGES:
        return target
    scopes = []
    if obj.is_class:
        scopes.append(obj)
    elif obj.parent is not None and obj.parent.is_class:
        scopes.append(obj.parent)
    scopes.append(module)
    for scope in scopes:
        if head in scope.members:
            return f"{scope.path}.{target}"
    return target


def _replace_roles(text: str, obj: Object) -> str:
    def link(match: re.Match) -> str:
        target = match["target"].strip()
        title = target
        if "<" in target and target.endswith(">"):         # :func:`title <target>`
            title, target = (part.strip() for part in target[:-1].split("<", 1))
        elif target.startswith("~"):
            target = target[1:]
            title = target.rsplit(".", 1)[-1]
        title = title.lstrip(".")
        identifier = _identifier(target, obj)
        return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'

    return _ROLE.sub(link, text)


class SphinxRoles(Extension):
    """Rewrite Sphinx roles and ``::`` literal-block markers in every docstring."""

    def on_object(self, *, obj: Object, **kwargs) -> None:
        self._rewrite(obj)

    def on_package(self, *, pkg: Object, **kwargs) -> None:
        self._rewrite(pkg)     # on_object does not visit the top-level package itself

    @staticmethod
    def _rewrite(obj: Object) -> None:
        if obj.is_alias or obj.docstring is None or getattr(obj.docstring, "_roles_done", False):
            return
        text = obj.docstring.value
        text = _replace_roles(text, obj)
        text = _BARE_LITERAL.sub("", text)
        text = _LITERAL.sub(r"\1:", text)
        obj.docstring.value = text
        obj.docstring._roles_done = True
