"""The real generated post in ../shared/seeds must read as its author meant."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import html as lxml_html

from feedpub.config import SiteConfig
from feedpub.content.post import read_post
from feedpub.content.render import render_post
from tests.conftest import SEEDS

SEED_FILES = sorted(SEEDS.glob("*.txt")) if SEEDS.is_dir() else []
pytestmark = pytest.mark.skipif(not SEED_FILES, reason=f"no seed posts in {SEEDS}")


@pytest.fixture
def seed() -> Path:
    return SEED_FILES[0]


def test_seed_front_matter(seed: Path, site: SiteConfig) -> None:
    post, warnings = read_post(seed, seed.name, site, "posts/{slug}/")
    assert warnings == []
    assert post.title == "微软将评定面向云客户的AI模型安全等级"
    assert post.date == datetime(2025, 6, 9, 13, 49, 22, 539000, tzinfo=UTC)
    assert post.updated == datetime(2025, 6, 9, 14, 44, 56, 924000, tzinfo=UTC)
    assert post.tags == ("AI", "Technology", "News")
    assert post.categories == ("AI News",)
    assert post.author.name == "AI News Assistant"
    assert post.summary is None  # the same words as the title
    assert post.cover is None and post.source_url is None
    assert (post.word_count, post.reading_time) == (2000, 10)
    assert dict(post.extra) == {"ai_score": 0}


def test_seed_body_reads_as_meant(seed: Path, site: SiteConfig) -> None:
    post, _ = read_post(seed, seed.name, site, "posts/{slug}/")
    rendered = render_post(post, 70)
    doc = lxml_html.fragment_fromstring(rendered.html, create_parent="div")
    headings = [h.text_content() for h in doc.iter("h2", "h3")]
    assert headings == [
        "TL;DR",
        "微软推出AI模型安全排名，旨在增强云客户信任",
        "增强信任与应对风险",
        "市场影响与未来展望",
        "References",
        "🏷️ Tags",
    ]
    assert "##" not in doc.text_content()
    ids = {e.get("id") for e in doc.iter() if e.get("id")}
    refs = [a.get("href") for a in doc.iterfind(".//sup/a")]
    assert len(refs) == 8  # [^1] four times, [^2] and [^3] once, [^4] twice
    # Absolute, as feed readers and mail clients need, and naming a note of this post.
    assert all(href.startswith(post.url + "#") and href.split("#", 1)[1] in ids for href in refs)
    notes = doc.findall(".//section/ol/li")
    assert len(notes) == 5  # [^5] is cited nowhere but is still listed
    assert "Financial Times" in notes[4].text_content()
    assert rendered.summary.startswith("微软将为其云客户销售的人工智能（AI）模型引入")
    assert rendered.summary.endswith("…")
    assert "[" not in rendered.summary and "<" not in rendered.summary
