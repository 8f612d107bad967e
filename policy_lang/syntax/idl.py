"""IDL parser: ``*.idl`` text -> :class:`~policy_lang.syntax.ast.IdlFile`.

Accepted language (KCE 0.x - 1.4, newest wording preferred)::

    package a.b.Name                      // required, first
    import a.b.Other                      // any number
    const UInt32 Max = (2 << 3) ** 2;     // dec, 0x hex, 0o octal literals
    typedef sequence<UInt8, Max> Blob;
    struct S { UInt16 level; Blob data; } // ';' after '}' optional
    union U { UInt8 code; string<8> label; }
    interface {
        Push(in S s, out UInt32 stored, error SInt32 rc);
        Reset();
    }

Older forms accepted with a diagnostic: ``interface IPing { ... }`` (Education Kit
named interface; the name is ignored, SYN207) and a method signature without the
closing ``;`` (SYN208).  Constant expressions also accept ``& | ^`` and unary ``+``,
which the nk documentation does not list (SYN210).

Only file-local checks happen here (names, duplicates, parameter order, operator
parenthesisation).  Names are resolved and constants evaluated by
:mod:`policy_lang.types`.
"""
from __future__ import annotations

from lark import Token, Tree

from ..diagnostics import Diagnostics, define_code
from ..source import SourceText
from . import ast
from .lexing import SYN_UNTERMINATED, Grammar, load_grammar, lex, make_token, parse_tokens, split_declarations

# ----------------------------------------------------------------------------- codes

SYN_IDL_NO_PACKAGE = define_code(
    "SYN200", "error", "IDL file has no package declaration",
    "start the file with 'package a.b.Name', the dotted path of the file (a/b/Name.idl)",
)
SYN_IDL_PACKAGE_PLACE = define_code(
    "SYN201", "error", "package declaration repeated or not first",
    "an IDL file declares exactly one package, on its first line",
)
SYN_IDL_TWO_INTERFACES = define_code(
    "SYN203", "error", "more than one interface block",
    "a package defines at most one interface; merge the method lists into one 'interface { }'",
)
SYN_PARAM_ORDER = define_code(
    "SYN204", "warning", "method parameters out of order",
    "list all 'in' parameters first, then all 'out', then all 'error' parameters",
)
SYN_UNDERSCORE = define_code(
    "SYN205", "error", "name contains '_'",
    "method, endpoint and component-instance names must not contain '_' (nk rejects them); "
    "use camelCase",
)
SYN_DUPLICATE = define_code(
    "SYN206", "error", "duplicate name",
    "names must be unique in their list (methods of an interface, parameters of a method, "
    "fields of a struct, declarations of a package, endpoints, component instances)",
)
SYN_NAMED_INTERFACE = define_code(
    "SYN207", "warning", "named interface block (Education Kit syntax)",
    "write 'interface { ... }' without a name: the interface is named by its package",
)
SYN_METHOD_SEMICOLON = define_code(
    "SYN208", "warning", "method signature without ';'",
    "end every method signature with ';'",
)
SYN_NEEDS_PARENS = define_code(
    "SYN209", "error", "operators need parentheses",
    "'**', '<<' and '>>' are not associative and shifts do not mix with arithmetic operators: "
    "write (a ** b) ** c, a << (b + c)",
)
SYN_UNDOCUMENTED_OP = define_code(
    "SYN210", "warning", "operator not in the documented IDL set",
    "nk documents unary - ~ and binary ** * / % + - << >> only; compute the value another way "
    "or check that your nk version accepts it",
)
SYN_EMPTY_RECORD = define_code(
    "SYN211", "warning", "struct or union without fields",
    "declare at least one field",
)
SYN_RESERVED_NAME = define_code(
    "SYN212", "error", "declaration uses a reserved type name",
    "UInt8 ... SInt64, Handle, UIntSize and UIntPtr are built-in types; choose another name",
)
SYN_FILE_NAME_STYLE = define_code(
    "SYN213", "warning", "package, component or class name breaks the naming rule",
    "the last segment of the name is also the file name: start it with an uppercase letter "
    "and do not use '_'",
)
SYN_LITERAL_TOO_LONG = define_code(
    "SYN214", "error", "integer literal too long",
    "IDL integers are at most 64 bits wide",
)

SYN_TOO_DEEP = define_code(
    "SYN215", "error", "declaration nested too deeply",
    "split the expression or type into named constants and typedefs",
)

def check_unique(name: ast.Name, seen: dict[str, int], what: str, source: SourceText,
                 diags: Diagnostics, where: str = "") -> None:
    """Report ``name`` if ``seen`` has it already (SYN206); otherwise remember it."""
    if name.text in seen:
        line, _ = source.position(seen[name.text])
        diags.add(
            SYN_DUPLICATE,
            f"duplicate {what} '{name.text}'{where} (first on line {line})",
            source.span(name.pos, name.pos + len(name.text)),
        )
    else:
        seen[name.text] = name.pos


PRIMITIVE_TYPES = frozenset({
    "UInt8", "UInt16", "UInt32", "UInt64",
    "SInt8", "SInt16", "SInt32", "SInt64",
    "UIntSize", "UIntPtr", "Handle",
})

_STARTERS = frozenset({"PACKAGE", "IMPORT", "CONST", "TYPEDEF", "STRUCT", "UNION", "INTERFACE"})
_DIRECTION_RANK = {"in": 0, "out": 1, "error": 2}
_ARITH = frozenset({"+", "-", "*", "/", "%", "**"})
_SHIFTS = frozenset({"<<", ">>"})
_UNDOCUMENTED_BINARY = frozenset({"|", "&", "^"})
_MAX_LITERAL_CHARS = 40


def _grammar() -> Grammar:
    return load_grammar("idl", ("item",))


# ----------------------------------------------------------------------- token helpers

def prepare_tokens(grammar: Grammar, tokens: list[Token], source: SourceText, diags: Diagnostics) -> list[Token]:
    """Post-lexing fix-ups shared by the IDL and CDL/EDL parsers.

    * A keyword right after ``.`` is part of a dotted name: it becomes a NAME
      (``acme.error.Codes``, ``kl.security.Audit``).
    * ``/`` directly followed by ``*`` can only be a ``/*`` comment that the comment
      terminal failed to match, i.e. one that is never closed: report it and drop
      the rest of the file.
    """
    keyword_types = set(grammar.lexer.keywords.values())
    types = [tok.type for tok in tokens]
    if not any(i and types[i - 1] in ("SLASH", "DOT") for i, t in enumerate(types)
               if t == "STAR" or t in keyword_types):
        return list(tokens)          # nothing to fix (the usual case): no loop over the tokens
    out: list[Token] = []
    prev: Token | None = None
    for tok in tokens:
        if (
            prev is not None
            and prev.type == "SLASH"
            and tok.type == "STAR"
            and tok.start_pos == prev.start_pos + 1
        ):
            out.pop()
            diags.add(SYN_UNTERMINATED, "comment '/*' is never closed", source.span(prev.start_pos))
            return out
        if tok.type in keyword_types and prev is not None and prev.type == "DOT":
            tok = make_token("NAME", tok.value, tok.start_pos)
        out.append(tok)
        prev = tok
    return out


def first_pos(node) -> int:
    """Offset of the first token under ``node`` (a Token or a lark Tree)."""
    while isinstance(node, Tree):
        if not node.children:
            return 0
        node = node.children[0]
    return node.start_pos if isinstance(node, Token) else 0


def qname_of(tree: Tree) -> ast.Name:
    toks = [c for c in tree.children if isinstance(c, Token)]
    return ast.Name(".".join(str(t) for t in toks), toks[0].start_pos)


def check_file_name_style(name: ast.Name, what: str, source: SourceText, diags: Diagnostics) -> None:
    last = name.text.rsplit(".", 1)[-1]
    problems = []
    if last and not last[0].isupper():
        problems.append("does not start with an uppercase letter")
    if "_" in last:
        problems.append("contains '_'")
    if problems:
        diags.add(
            SYN_FILE_NAME_STYLE,
            f"{what} name '{name.text}': last segment '{last}' " + " and ".join(problems),
            source.span(name.pos + len(name.text) - len(last), name.pos + len(name.text)),
        )


def check_no_underscore(name: ast.Name, what: str, source: SourceText, diags: Diagnostics) -> None:
    if "_" in name.text:
        diags.add(
            SYN_UNDERSCORE,
            f"{what} name '{name.text}' contains '_'",
            source.span(name.pos, name.pos + len(name.text)),
        )


# ----------------------------------------------------------------------------- parser

def parse_idl(source: SourceText, diags: Diagnostics) -> ast.IdlFile | None:
    """Parse one IDL file; problems become diagnostics, never exceptions.

    Returns an :class:`IdlFile` holding every declaration that parsed (a declaration
    with a syntax error is left out, the others are kept).  ``package`` is None when
    the file does not declare one (SYN200 is reported).  Returns None only for a file
    with no tokens at all.
    """
    grammar = _grammar()
    tokens = prepare_tokens(grammar, lex(grammar, source, diags), source, diags)
    builder = _IdlBuilder(source, diags)
    if not tokens:
        diags.add(SYN_IDL_NO_PACKAGE, "IDL file is empty; expected 'package a.b.Name'", source.span(0))
        return None
    for chunk in split_declarations(tokens, _STARTERS):
        tree = parse_tokens(grammar, chunk, source, diags, start="item", what="IDL declaration")
        if tree is None:
            builder.broken_chunk(chunk)
            continue
        try:
            builder.item(tree.children[0], chunk)
        except RecursionError:
            diags.add(SYN_TOO_DEEP, "declaration nested too deeply to analyse", source.span(chunk[0].start_pos))
    return builder.finish(tokens)


class _IdlBuilder:
    def __init__(self, source: SourceText, diags: Diagnostics):
        self.source = source
        self.diags = diags
        self.package: ast.Name | None = None
        self.package_seen = False
        self.imports: list[ast.Name] = []
        self.decls: list[ast.IdlDecl] = []
        self.decl_names: dict[str, int] = {}
        self.interface: ast.IdlInterface | None = None
        self.other_decl_seen = False  # a declaration other than 'package' came first

    # -- structure

    def broken_chunk(self, chunk: list[Token]) -> None:
        if chunk and chunk[0].type == "PACKAGE":
            self.package_seen = True  # do not also report a missing package

    def finish(self, tokens: list[Token]) -> ast.IdlFile:
        if not self.package_seen:
            self.diags.add(
                SYN_IDL_NO_PACKAGE,
                "IDL file has no 'package' declaration",
                self.source.span(tokens[0].start_pos),
            )
        return ast.IdlFile(
            source=self.source,
            package=self.package,
            imports=tuple(self.imports),
            decls=tuple(self.decls),
            interface=self.interface,
        )

    def item(self, tree: Tree, chunk: list[Token]) -> None:
        kind = tree.data
        pos = chunk[0].start_pos
        if kind == "package_decl":
            self.package_decl(tree, pos)
            return
        self.other_decl_seen = True
        if kind == "import_decl":
            self.imports.append(qname_of(tree.children[0]))
        elif kind == "const_decl":
            type_, name_tok, expr = tree.children[0], tree.children[1], tree.children[2]
            name = self.decl_name(name_tok)
            self.decls.append(ast.IdlConst(self.type_expr(type_), name, self.const_expr(expr), pos))
        elif kind == "typedef_decl":
            name = self.decl_name(tree.children[1])
            self.decls.append(ast.IdlTypedef(self.type_expr(tree.children[0]), name, pos))
        elif kind in ("struct_decl", "union_decl"):
            name = self.decl_name(tree.children[0])
            fields = self.fields([c for c in tree.children[1:] if isinstance(c, Tree) and c.data == "field"], name)
            node_cls = ast.IdlStruct if kind == "struct_decl" else ast.IdlUnion
            self.decls.append(node_cls(name, fields, pos))
        elif kind == "interface_decl":
            self.interface_decl(tree, pos)

    def package_decl(self, tree: Tree, pos: int) -> None:
        name = qname_of(tree.children[0])
        if self.package_seen:
            self.diags.add(
                SYN_IDL_PACKAGE_PLACE,
                f"second package declaration '{name.text}'",
                self.source.span(pos),
            )
            return
        self.package_seen = True
        if self.other_decl_seen:
            self.diags.add(
                SYN_IDL_PACKAGE_PLACE,
                "the package declaration must come before every other declaration",
                self.source.span(pos),
            )
        self.package = name
        check_file_name_style(name, "package", self.source, self.diags)

    def decl_name(self, tok: Token) -> ast.Name:
        name = ast.Name(str(tok), tok.start_pos)
        span = self.source.span(tok.start_pos, tok.start_pos + len(tok))
        if name.text in PRIMITIVE_TYPES:
            self.diags.add(SYN_RESERVED_NAME, f"'{name.text}' is a built-in type and cannot be declared", span)
        elif name.text in self.decl_names:
            line, _ = self.source.position(self.decl_names[name.text])
            self.diags.add(SYN_DUPLICATE, f"'{name.text}' is already declared on line {line}", span)
        else:
            self.decl_names[name.text] = tok.start_pos
        return name

    def fields(self, trees: list[Tree], owner: ast.Name) -> tuple[ast.IdlField, ...]:
        out: list[ast.IdlField] = []
        seen: dict[str, int] = {}
        for f in trees:
            type_ = self.type_expr(f.children[0])
            name = self.member_name(f.children[1])
            self.unique(name, seen, "field", f" in '{owner.text}'")
            out.append(ast.IdlField(type_, name, first_pos(f)))
        if not out:
            self.diags.add(SYN_EMPTY_RECORD, f"'{owner.text}' has no fields", self.source.span(owner.pos))
        return tuple(out)

    def interface_decl(self, tree: Tree, pos: int) -> None:
        methods: list[ast.IdlMethod] = []
        seen: dict[str, int] = {}
        for child in tree.children:
            if isinstance(child, Token):  # Education Kit: interface IPing { ... }
                self.diags.add(
                    SYN_NAMED_INTERFACE,
                    f"interface name '{child}' is ignored; the interface is named by its package",
                    self.source.span(child.start_pos, child.start_pos + len(child)),
                )
            elif child.data == "method":
                methods.append(self.method(child, seen))
        if self.interface is not None:
            self.diags.add(
                SYN_IDL_TWO_INTERFACES,
                "a second 'interface' block; only the first one is used",
                self.source.span(pos),
            )
            return
        self.interface = ast.IdlInterface(tuple(methods), pos)

    def method(self, tree: Tree, seen: dict[str, int]) -> ast.IdlMethod:
        name_tok = tree.children[0]
        name = ast.Name(str(name_tok), name_tok.start_pos)
        check_no_underscore(name, "method", self.source, self.diags)
        self.unique(name, seen, "method")
        params: list[ast.IdlParam] = []
        param_names: dict[str, int] = {}
        has_semi = False
        rank = 0
        order_reported = False
        for child in tree.children[1:]:
            if child.data == "semi":
                has_semi = True
                continue
            direction_tok = child.children[0].children[0]
            direction = str(direction_tok)
            type_ = self.type_expr(child.children[1])
            pname = self.member_name(child.children[2])
            self.unique(pname, param_names, "parameter", f" of '{name.text}'")
            r = _DIRECTION_RANK[direction]
            if r < rank and not order_reported:
                before = {0: "in", 1: "out", 2: "error"}[rank]
                self.diags.add(
                    SYN_PARAM_ORDER,
                    f"'{direction}' parameter '{pname.text}' of '{name.text}' comes after an '{before}' parameter",
                    self.source.span(direction_tok.start_pos),
                )
                order_reported = True
            rank = max(rank, r)
            params.append(ast.IdlParam(direction, type_, pname, direction_tok.start_pos))
        if not has_semi:
            self.diags.add(
                SYN_METHOD_SEMICOLON,
                f"method '{name.text}' is not followed by ';'",
                self.source.span(name.pos, name.pos + len(name.text)),
            )
        return ast.IdlMethod(name, tuple(params), name.pos)

    def member_name(self, tree: Tree) -> ast.Name:
        tok = tree.children[0]
        return ast.Name(str(tok), tok.start_pos)

    def unique(self, name: ast.Name, seen: dict[str, int], what: str, where: str = "") -> None:
        check_unique(name, seen, what, self.source, self.diags, where)

    # -- types

    def type_expr(self, tree: Tree) -> ast.TypeExpr:
        kind = tree.data
        if kind == "named_type":
            name = qname_of(tree.children[0])
            if name.text in PRIMITIVE_TYPES:
                return ast.PrimType(name.text, name.pos)
            return ast.NamedType(name.text, name.pos)
        kw = tree.children[0]
        pos = kw.start_pos
        if kind == "string_type":
            return ast.StringType(self.const_expr(tree.children[1]), pos)
        if kind == "bytes_type":
            return ast.BytesType(self.const_expr(tree.children[1]), pos)
        if kind == "sequence_type":
            return ast.SequenceType(self.type_expr(tree.children[1]), self.const_expr(tree.children[2]), pos)
        if kind == "array_type":
            return ast.ArrayType(self.type_expr(tree.children[1]), self.const_expr(tree.children[2]), pos)
        if kind == "handle_type":
            return ast.HandleType(qname_of(tree.children[1]), pos)
        raise AssertionError(f"unknown type node {kind}")  # pragma: no cover - grammar and code agree

    # -- constant expressions

    def const_expr(self, tree) -> ast.ConstExpr:
        node, _ = self._expr(tree)
        return node

    def _expr(self, tree) -> tuple[ast.ConstExpr, bool]:
        """Returns (node, parenthesized)."""
        kind = tree.data
        if kind == "paren":
            node, _ = self._expr(tree.children[0])
            return node, True
        if kind == "int_lit":
            tok = tree.children[0]
            return ast.IntLit(self._int_value(tok), tok.start_pos), False
        if kind == "const_ref":
            name = qname_of(tree.children[0])
            return ast.ConstRef(name.text, name.pos), False
        if kind == "unop":
            op_tok, operand = tree.children
            node, _ = self._expr(operand)
            if op_tok == "+":
                self._undocumented(op_tok, "unary '+'")
            return ast.ConstUnOp(str(op_tok), node, op_tok.start_pos), False
        if kind == "binop":
            left_t, op_tok, right_t = tree.children
            left, lpar = self._expr(left_t)
            right, rpar = self._expr(right_t)
            op = str(op_tok)
            self._check_parens(op, op_tok, left, lpar, right, rpar)
            if op in _UNDOCUMENTED_BINARY:
                self._undocumented(op_tok, f"'{op}'")
            return ast.ConstBinOp(op, left, right, op_tok.start_pos), False
        raise AssertionError(f"unknown expression node {kind}")  # pragma: no cover

    def _check_parens(self, op, op_tok, left, lpar, right, rpar) -> None:
        for operand, par in ((left, lpar), (right, rpar)):
            if par or not isinstance(operand, ast.ConstBinOp):
                continue
            inner = operand.op
            if op == "**" and inner == "**":
                msg = "'**' is not associative: write (a ** b) ** c or a ** (b ** c)"
            elif op in _SHIFTS and (inner in _SHIFTS or inner in _ARITH):
                msg = f"'{op}' does not combine with '{inner}' without parentheses"
            else:
                continue
            self.diags.add(SYN_NEEDS_PARENS, msg, self.source.span(op_tok.start_pos, op_tok.start_pos + len(op_tok)))
            return

    def _undocumented(self, tok: Token, what: str) -> None:
        self.diags.add(
            SYN_UNDOCUMENTED_OP,
            f"{what} is not a documented IDL operator",
            self.source.span(tok.start_pos, tok.start_pos + len(tok)),
        )

    def _int_value(self, tok: Token) -> int:
        text = str(tok)
        if len(text) > _MAX_LITERAL_CHARS:
            self.diags.add(
                SYN_LITERAL_TOO_LONG,
                f"integer literal of {len(text)} characters",
                self.source.span(tok.start_pos),
            )
            return 0
        low = text.lower()
        if low.startswith("0x"):
            return int(low[2:], 16)
        if low.startswith("0o"):
            return int(low[2:], 8)
        return int(low, 10)
