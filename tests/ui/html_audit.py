"""Check that hostile text in a rendered page stayed text.

Tests put ``MARK`` inside markup-shaped strings (``HOSTILE``) in stored fields; a page is safe
when, parsed as a browser would, ``MARK`` is never the name of a tag or attribute nor inside a
script, no element has an inline event handler (``on…``: the CSP forbids our templates to use
them), no script is inline, and no link or source uses ``javascript:``. ``MARK`` as text or
inside an attribute's value is fine: that is escaped text.
"""

from __future__ import annotations

from html.parser import HTMLParser

MARK = "zq7x"
HOSTILE = [
    f"<script>window.{MARK}=1</script>",
    f'<img src=x onerror="window.{MARK}=2">',
    f'"><{MARK} onmouseover=alert(1)>',
    f"'><svg/onload=window.{MARK}=3>",
    f"javascript:window.{MARK}=4",
    f"[click](javascript:window.{MARK}=5) <a href=\"javascript:{MARK}\">x</a>",
    f"</textarea></pre></code></table><{MARK}>",
    f"<!-- {MARK} --><style>body{{display:none}}</style>",
    f"{{{{ {MARK} }}}} {{% raw %}}{MARK}",
    f"&lt;{MARK}&gt; &#60;script&#62;{MARK}",
]


class _Audit(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if MARK in tag:
            self.problems.append(f"tag <{tag}>")
        if tag == "script":
            if not dict(attrs).get("src"):
                self.problems.append("inline <script>")
            self._in_script = True
        if tag == "style":
            self.problems.append("<style> element")
        for name, value in attrs:
            if MARK in name:
                self.problems.append(f"attribute {name!r} on <{tag}>")
            if name.startswith(("hx-", "sse-", "data-hx")) and value and MARK in value:
                self.problems.append(f"htmx attribute {name}={value!r} on <{tag}>")
            if name.startswith("on"):
                self.problems.append(f"event handler {name}={value!r} on <{tag}>")
            if name in ("href", "src", "action", "formaction", "xlink:href") and value \
                    and value.strip().lower().startswith(("javascript:", "vbscript:", "data:text")):
                self.problems.append(f"{name}={value!r} on <{tag}>")

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append(f"script content {data[:80]!r}")


def unsafe_markup(html: str) -> list[str]:
    """What in ``html`` is markup that stored text must never become (empty when safe)."""
    audit = _Audit()
    audit.feed(html)
    audit.close()
    return audit.problems
