"""CDL / EDL parser: ``*.cdl`` and ``*.edl`` text -> :class:`~policy_lang.syntax.ast.ComponentFile`.

Accepted forms (sections after the header in any order, entries separated by
newlines, ``;`` or ``,``)::

    component a.b.Comp           // CDL          task class a.b.Class   // EDL, KCE 1.3+
    security a.b.Iface                           entity a.b.Class       // EDL, older
    endpoints { ep : a.b.Iface }                 components { i : a.b.Comp }
    components { i : a.b.Comp }                  security a.b.Iface
                                                 endpoints { ep : a.b.Iface }

Legacy forms, normalised into the same AST:

* ``interfaces { impl : a.b.Iface }`` (KCE 0.0/1.0 CDL and EDL): entries go into
  ``endpoints`` and ``legacy_interfaces`` is set;
* ``interface { impl : a.b.Iface }`` (singular; not in any documentation we found):
  same, with warning SYN243;
* Education Kit entries without a block right after the header (or the security
  line): in a CDL they are interface implementations (``ping_impl: ping.IPing`` ->
  endpoints, ``legacy_interfaces`` set), in an EDL component instances
  (``uart0: uart_comp``); warning SYN242.
"""
from __future__ import annotations

from lark import Token, Tree

from ..diagnostics import Diagnostics, define_code
from ..source import SourceText
from . import ast
from .idl import (
    check_file_name_style,
    check_no_underscore,
    check_unique,
    prepare_tokens,
    qname_of,
)
from .lexing import Grammar, load_grammar, lex, parse_tokens, split_declarations

SYN_COMPONENT_HEADER = define_code(
    "SYN240", "error", "missing or wrong CDL/EDL header",
    "a .cdl file starts with 'component a.b.Name'; an .edl file with 'task class a.b.Name' "
    "(or the older 'entity a.b.Name')",
)
SYN_SECTION_TWICE = define_code(
    "SYN241", "error", "section declared more than once",
    "declare the header and 'security' once, and each of 'endpoints' / 'components' in one block",
)
SYN_BARE_ENTRIES = define_code(
    "SYN242", "warning", "entries outside a block (Education Kit syntax)",
    "put endpoints in 'endpoints { name : pkg.Iface }' and component instances in "
    "'components { name : pkg.Comp }'",
)
SYN_SINGULAR_INTERFACE_BLOCK = define_code(
    "SYN243", "warning", "'interface { }' block in a CDL/EDL description",
    "write 'endpoints { name : pkg.Iface }' (or the older 'interfaces { }')",
)
SYN_EMPTY_COMPONENT = define_code(
    "SYN244", "warning", "component declares nothing",
    "a CDL description should declare a security interface, endpoints or components; "
    "otherwise it describes an empty component",
)

_STARTERS = frozenset({
    "COMPONENT", "TASK", "ENTITY", "SECURITY", "ENDPOINTS", "COMPONENTS", "INTERFACES", "INTERFACE",
})
_HEADER_FORM = {
    "component_header": "component",
    "task_class_header": "task class",
    "entity_header": "entity",
}
_KIND_OF_FORM = {"component": "component", "task class": "class", "entity": "class"}


def _grammar() -> Grammar:
    return load_grammar("components", ("item",))


def parse_component(source: SourceText, diags: Diagnostics, kind: str) -> ast.ComponentFile | None:
    """Parse a CDL (``kind="component"``) or EDL (``kind="class"``) description.

    Returns None when the file has no usable header (SYN240, or a syntax error in
    the header line); otherwise a :class:`ComponentFile` with every section that
    parsed.  Never raises for bad input.
    """
    if kind not in ("component", "class"):
        raise ValueError(f"kind must be 'component' or 'class', not {kind!r}")
    grammar = _grammar()
    tokens = prepare_tokens(grammar, lex(grammar, source, diags), source, diags)
    b = _ComponentBuilder(source, diags, kind)
    if not tokens:
        diags.add(SYN_COMPONENT_HEADER, f"empty file; expected {_expected_header(kind)}", source.span(0))
        return None
    for index, chunk in enumerate(split_declarations(tokens, _STARTERS)):
        tree = parse_tokens(grammar, chunk, source, diags, start="item", what=_what(kind))
        if tree is None:
            b.any_broken = True
            if index == 0:
                b.header_failed = True
            continue
        b.item(tree, chunk, index)
    return b.finish()


def _what(kind: str) -> str:
    return "CDL description" if kind == "component" else "EDL description"


def _expected_header(kind: str) -> str:
    return "'component a.b.Name'" if kind == "component" else "'task class a.b.Name' or 'entity a.b.Name'"


class _ComponentBuilder:
    def __init__(self, source: SourceText, diags: Diagnostics, kind: str):
        self.source = source
        self.diags = diags
        self.kind = kind
        self.form: str | None = None
        self.name: ast.Name | None = None
        self.header_failed = False
        self.header_wrong = False
        self.any_broken = False
        self.security: ast.Name | None = None
        self.endpoints: list[ast.EndpointDecl] = []
        self.components: list[ast.ComponentInstanceDecl] = []
        self.endpoint_names: dict[str, int] = {}
        self.instance_names: dict[str, int] = {}
        self.legacy = False
        self.blocks_seen: dict[str, int] = {}

    def finish(self) -> ast.ComponentFile | None:
        if self.name is None or self.form is None or self.header_wrong:
            return None
        if (
            self.kind == "component"
            and not self.any_broken
            and self.security is None
            and not self.endpoints
            and not self.components
        ):
            self.diags.add(
                SYN_EMPTY_COMPONENT,
                f"component '{self.name.text}' has no security interface, endpoints or components",
                self.source.span(self.name.pos, self.name.pos + len(self.name.text)),
            )
        return ast.ComponentFile(
            source=self.source,
            kind=self.kind,
            form=self.form,
            name=self.name,
            security=self.security,
            endpoints=tuple(self.endpoints),
            components=tuple(self.components),
            legacy_interfaces=self.legacy,
        )

    def item(self, tree: Tree, chunk: list[Token], index: int) -> None:
        first = tree.children[0]
        pos = chunk[0].start_pos
        bare = [c for c in tree.children[1:] if isinstance(c, Tree) and c.data == "bare_entry"]
        if first.data in _HEADER_FORM:
            self.header(first, pos, index)
        elif index == 0 and not self.header_failed:
            self._missing_header(pos)
        if first.data == "security":
            self.security_decl(first, pos)
        elif first.data == "block":
            self.block(first)
        if bare:
            self.bare_entries(bare)

    def _missing_header(self, pos: int) -> None:
        self.header_wrong = True
        self.diags.add(
            SYN_COMPONENT_HEADER,
            f"the description must start with {_expected_header(self.kind)}",
            self.source.span(pos),
        )

    def header(self, tree: Tree, pos: int, index: int) -> None:
        form = _HEADER_FORM[tree.data]
        name = qname_of(tree.children[-1])
        if self.name is not None:
            self.diags.add(SYN_SECTION_TWICE, f"second header '{form} {name.text}'", self.source.span(pos))
            return
        if index != 0:  # the missing header was reported at the first section
            return
        if _KIND_OF_FORM[form] != self.kind:
            self.header_wrong = True
            what = ".cdl" if self.kind == "component" else ".edl"
            self.diags.add(
                SYN_COMPONENT_HEADER,
                f"'{form}' header in a {what} file; expected {_expected_header(self.kind)}",
                self.source.span(pos),
            )
            return
        self.form = form
        self.name = name
        check_file_name_style(name, "component" if self.kind == "component" else "process class",
                              self.source, self.diags)

    def security_decl(self, tree: Tree, pos: int) -> None:
        name = qname_of(tree.children[0])
        if self.security is not None:
            self.diags.add(
                SYN_SECTION_TWICE,
                f"second 'security' declaration ('{name.text}'); '{self.security.text}' is used",
                self.source.span(pos),
            )
            return
        self.security = name

    def block(self, tree: Tree) -> None:
        kw = tree.children[0].children[0]
        word = str(kw)
        entries = [c for c in tree.children[1:] if isinstance(c, Tree) and c.data == "entry"]
        # endpoints / interfaces / interface all fill the endpoint list
        family = "components" if word == "components" else "endpoints"
        if word == "interface":
            self.diags.add(
                SYN_SINGULAR_INTERFACE_BLOCK,
                "'interface { }' block read as the legacy 'interfaces { }' list of endpoints",
                self.source.span(kw.start_pos, kw.start_pos + len(kw)),
            )
        if word in ("interfaces", "interface"):
            self.legacy = True
        if family in self.blocks_seen:
            line, _ = self.source.position(self.blocks_seen[family])
            self.diags.add(
                SYN_SECTION_TWICE,
                f"second '{word}' block (the first list is on line {line}); the entries are merged",
                self.source.span(kw.start_pos, kw.start_pos + len(kw)),
            )
        else:
            self.blocks_seen[family] = kw.start_pos
        for e in entries:
            name_tok = e.children[0].children[0]
            name = ast.Name(str(name_tok), name_tok.start_pos)
            target = qname_of(e.children[1])
            self._add(family, name, target)

    def bare_entries(self, entries: list[Tree]) -> None:
        first = entries[0].children[0]
        family = "endpoints" if self.kind == "component" else "components"
        what = "interface implementations" if family == "endpoints" else "component instances"
        self.diags.add(
            SYN_BARE_ENTRIES,
            f"{what} listed without a block",
            self.source.span(first.start_pos),
        )
        if family == "endpoints":
            self.legacy = True
        for e in entries:
            tok = e.children[0]
            self._add(family, ast.Name(str(tok), tok.start_pos), qname_of(e.children[1]))

    def _add(self, family: str, name: ast.Name, target: ast.Name) -> None:
        if family == "components":
            seen, what = self.instance_names, "component instance"
        else:
            seen, what = self.endpoint_names, "endpoint"
        check_no_underscore(name, what, self.source, self.diags)
        check_unique(name, seen, what, self.source, self.diags)
        if family == "components":
            self.components.append(ast.ComponentInstanceDecl(name, target, name.pos))
        else:
            self.endpoints.append(ast.EndpointDecl(name, target, name.pos))
