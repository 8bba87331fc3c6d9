"""Griffe extension: read the reST bits of the project's numpy docstrings as Markdown.

The docstrings are written for numpydoc (Sphinx roles such as :func:`simulate` and
:class:`~turbsim.SimConfig`, literal blocks introduced by ``::``). mkdocstrings renders
docstrings as Markdown, so before rendering this extension

* turns every role into a cross-reference that is *optional*: a link when the target is
  documented on the site, plain code otherwise (never a warning, so ``--strict`` holds);
* drops the ``::`` that introduces a literal block (the indented block that follows is
  already a Markdown code block), as Sphinx does;
* takes each parameter's default from the signature, not from the docstring: griffe's
  numpy parser gives grouped parameters (``mean, std : float``) the first one's default and
  reads a set of choices (``{"first", "muscl"}``) as defaulting to its first member.

Targets are resolved as Sphinx would: ``~a.b.c`` shows ``c``; ``.name`` is relative to the
current package; a bare name is looked up in the current class, then the current module.
The source files are not changed.
"""
from __future__ import annotations

import re

from griffe import Docstring, DocstringSectionKind, ExprCall, ExprKeyword, Extension, Object

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


def _signature_default(default):
    """The default as the signature states it; a field helper's call gives its default argument."""
    if isinstance(default, ExprCall):      # field(default=X) or a project helper _option(X, ...)
        for argument in default.arguments:
            if isinstance(argument, ExprKeyword) and argument.name == "default":
                return argument.value
        first = default.arguments[0] if default.arguments else None
        if first is not None and not isinstance(first, ExprKeyword):
            return first                   # the helper's first argument is the default
        return _KEEP
    return default


_KEEP = object()


class _SignatureDefaults(Docstring):
    """A docstring whose parsed parameters take their defaults from the signature."""

    @property
    def parsed(self):
        if "_parsed_fixed" not in self.__dict__:
            sections = self.parse()
            try:
                signature = {p.name: p for p in self.parent.parameters}
            except AttributeError:          # no signature (a module, an attribute)
                signature = {}
            for section in sections:
                if section.kind is not DocstringSectionKind.parameters:
                    continue
                for parameter in section.value:
                    if parameter.name in signature:
                        default = _signature_default(signature[parameter.name].default)
                        if default is not _KEEP:
                            parameter.value = default
            self.__dict__["_parsed_fixed"] = sections
        return self.__dict__["_parsed_fixed"]


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
        obj.docstring.__class__ = _SignatureDefaults
