from __future__ import annotations

from feedpub.content.sanitise import sanitise

BASE = "https://example.org/posts/hello/"

HOSTILE = (
    '<script>alert(1)</script><style>body{}</style><iframe src="https://evil.example/"></iframe>'
    '<object data="x"></object><form action="/x"><input name="a"></form>'
    '<p onclick="steal()" style="color:red">text</p><a href="javascript:alert(1)">js</a>'
    '<a href=" JaVaScRiPt:alert(1)">js2</a><img src="x" onerror="steal()">'
)


def test_sanitiser_removes_active_content() -> None:
    out = sanitise(HOSTILE, BASE)
    for bad in (
        "<script",
        "alert(1)",
        "<style",
        "<iframe",
        "<object",
        "<form",
        "<input",
        "onclick",
        "onerror",
        "style=",
        "javascript",
        "JaVaScRiPt",
    ):
        assert bad not in out
    assert "<p>text</p>" in out
