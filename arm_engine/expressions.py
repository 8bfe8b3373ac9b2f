"""Tokenizer and parser for the ARM template expression language (the text inside ``"[...]"``).

The grammar is small: string literals (``'it''s'``), integers, nested function calls (``concat(a, b)``, and
``namespace.function(...)`` for user-defined functions), property access (``.name``, ``['name']``) and indexing
(``[0]``). Parses are cached: an 800-resource copy loop evaluates the same few expression strings thousands of
times, and parsing dominates otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .errors import IssueCode, TemplateError, TemplateIssue

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class Call:
    """A function call; ``text`` is its source (for Deferred values and error messages)."""

    name: str
    args: tuple[Expr, ...]
    text: str
    namespace: str | None = None
    key: str = ""  # the lower-cased name: function names are case-insensitive


@dataclass(frozen=True, slots=True)
class Property:
    target: Expr
    name: str
    text: str


@dataclass(frozen=True, slots=True)
class Index:
    target: Expr
    index: Expr
    text: str


Expr = Literal | Call | Property | Index


class ExpressionSyntaxError(Exception):
    """Internal: carries the message and offset; the public API turns it into a TemplateError."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<punct>[()\[\],.])
    """,
    re.VERBOSE,
)


def _tokenize(text: str) -> list[tuple[str, Any, int, int]]:
    tokens: list[tuple[str, Any, int, int]] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos] == "'":
                raise ExpressionSyntaxError("unterminated string literal", pos)
            raise ExpressionSyntaxError(f"unexpected character {text[pos]!r}", pos)
        kind = m.lastgroup or ""
        end = m.end()
        if kind == "string":
            tokens.append(("string", m.group()[1:-1].replace("''", "'"), pos, end))
        elif kind == "number":
            raw = m.group()
            if "." in raw:
                tokens.append(("number", float(raw), pos, end))
            else:
                value = int(raw)
                if not INT64_MIN <= value <= INT64_MAX:
                    raise ExpressionSyntaxError(f"integer literal {raw} is outside the 64-bit range", pos)
                tokens.append(("number", value, pos, end))
        elif kind == "ident":
            tokens.append(("ident", m.group(), pos, end))
        elif kind == "punct":
            tokens.append((m.group(), m.group(), pos, end))
        pos = end
    tokens.append(("eof", None, n, n))
    return tokens


_BARE_LITERALS = {"true": True, "false": False, "null": None}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self, ahead: int = 0) -> tuple[str, Any, int, int]:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def take(self, kind: str) -> tuple[str, Any, int, int]:
        tok = self.peek()
        if tok[0] != kind:
            what = "end of expression" if tok[0] == "eof" else repr(self.text[tok[2] : tok[3]])
            raise ExpressionSyntaxError(f"expected {kind!r} but found {what}", tok[2])
        self.i += 1
        return tok

    def parse(self) -> Expr:
        if self.peek()[0] == "eof":
            raise ExpressionSyntaxError("the expression is empty", 0)
        expr = self.expression(0)
        tok = self.peek()
        if tok[0] != "eof":
            raise ExpressionSyntaxError(f"unexpected {self.text[tok[2] : tok[3]]!r} after the expression", tok[2])
        return expr

    def expression(self, depth: int) -> Expr:
        if depth > 200:
            raise ExpressionSyntaxError("the expression is nested too deeply", self.peek()[2])
        start = self.peek()[2]
        expr = self.primary(depth)
        while True:
            kind = self.peek()[0]
            if kind == ".":
                self.i += 1
                name_tok = self.peek()
                if name_tok[0] != "ident":
                    raise ExpressionSyntaxError("expected a property name after '.'", name_tok[2])
                self.i += 1
                expr = Property(expr, name_tok[1], self.text[start : name_tok[3]])
            elif kind == "[":
                self.i += 1
                index = self.expression(depth + 1)
                close = self.take("]")
                expr = Index(expr, index, self.text[start : close[3]])
            else:
                return expr

    def primary(self, depth: int) -> Expr:
        tok = self.peek()
        kind = tok[0]
        if kind in ("string", "number"):
            self.i += 1
            return Literal(tok[1])
        if kind != "ident":
            what = "end of expression" if kind == "eof" else repr(self.text[tok[2] : tok[3]])
            raise ExpressionSyntaxError(f"expected a value or a function call but found {what}", tok[2])
        self.i += 1
        namespace: str | None = None
        name = tok[1]
        if self.peek()[0] == "." and self.peek(1)[0] == "ident" and self.peek(2)[0] == "(":
            namespace = name
            name = self.peek(1)[1]
            self.i += 2
        if self.peek()[0] != "(":
            if name.lower() in _BARE_LITERALS and namespace is None:
                return Literal(_BARE_LITERALS[name.lower()])
            raise ExpressionSyntaxError(f"expected '(' after function name {name!r}", self.peek()[2])
        self.i += 1
        args: list[Expr] = []
        if self.peek()[0] != ")":
            while True:
                args.append(self.expression(depth + 1))
                if self.peek()[0] == ",":
                    self.i += 1
                    continue
                break
        close = self.take(")")
        return Call(name, tuple(args), self.text[tok[2] : close[3]], namespace, name.lower())


def is_expression(text: object) -> bool:
    """ARM's rule: a string is an expression when it starts with '[' and ends with ']', unless it starts '[['."""
    return isinstance(text, str) and len(text) >= 2 and text[0] == "[" and text[-1] == "]" and text[1] != "["


def is_escaped_literal(text: str) -> bool:
    """'[[...]' is the literal string '[...]'."""
    return len(text) >= 3 and text.startswith("[[") and text[-1] == "]"


@lru_cache(maxsize=8192)
def _parse_cached(body: str) -> Expr | ExpressionSyntaxError:
    try:
        return _Parser(body).parse()
    except ExpressionSyntaxError as exc:
        return exc
    except RecursionError:
        return ExpressionSyntaxError("the expression is nested too deeply", 0)


def parse_body(body: str) -> Expr:
    """Parse the text between the brackets; raises ExpressionSyntaxError (offset into ``body``)."""
    result = _parse_cached(body)
    if isinstance(result, ExpressionSyntaxError):
        raise result
    return result


def parse_expression(text: str, path: str = "") -> Expr:
    """Parse a full ``"[...]"`` expression string, raising TemplateError(EXPRESSION_SYNTAX) with ``path``."""
    if not is_expression(text):
        raise TemplateError(
            TemplateIssue(
                IssueCode.EXPRESSION_SYNTAX,
                f"{text!r} is not an expression: expressions start with '[' and end with ']'",
                path,
                details={"expression": text},
            )
        )
    try:
        return parse_body(text[1:-1])
    except ExpressionSyntaxError as exc:
        raise TemplateError(
            TemplateIssue(
                IssueCode.EXPRESSION_SYNTAX,
                f"invalid expression {text!r}: {exc.message} (at character {exc.offset + 2})",
                path,
                details={"expression": text, "offset": exc.offset + 2},  # 1-based, counting the '[
            )
        ) from None
