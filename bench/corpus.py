"""A deterministic corpus of posts in the seed's format, for benchmarks.

    python bench/corpus.py OUT_DIR N

Writes N posts of about 4 KB each (Chinese and English, tags, categories,
footnotes with a references section, about 2% drafts and 1% future-dated) and a
config.yaml beside them. The same N always gives the same bytes.
"""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

TAGS = [
    "AI",
    "LLM",
    "Agents",
    "Open Source",
    "Robotics",
    "Chips",
    "Policy",
    "Safety",
    "Research",
    "Startups",
    "Cloud",
    "Vision",
    "Speech",
    "Healthcare",
    "Finance",
    "Education",
    "Security",
    "Data",
    "Hardware",
    "Edge",
    "评测",
    "大模型",
    "机器人",
    "芯片",
    "政策",
    "安全",
    "开源",
    "医疗",
    "金融",
    "教育",
    "自动驾驶",
    "云计算",
    "数据",
    "多模态",
    "推理",
    "训练",
    "AIGC",
    "C++",
    "Rust",
    "Python",
]
CATEGORIES = [
    "AI News",
    "Analysis",
    "Research",
    "Industry",
    "行业动态",
    "深度分析",
    "产品发布",
    "政策解读",
]
ZH_SENTENCES = [
    "研究团队表示，新模型在多个基准测试中取得了显著进步。",
    "业内人士认为，这一变化将影响整个行业的竞争格局。",
    "公司计划在未来几个月内向更多开发者开放这项能力。",
    "分析师指出，成本和能耗仍然是大规模部署的主要障碍。",
    "监管机构正在密切关注相关技术带来的数据和隐私风险。",
    "开源社区对此反应积极，已有多个项目宣布提供支持。",
]
EN_SENTENCES = [
    "The team says the new model improves markedly on several public benchmarks.",
    "People in the industry expect the change to reshape competition over the next year.",
    "The company plans to open the feature to more developers in the coming months.",
    "Analysts point out that cost and energy use remain the main obstacles to deployment.",
    "Regulators are watching the data and privacy risks that the technology brings.",
    "The open-source community reacted warmly, and several projects announced support.",
]
START = datetime(2024, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def post(index: int, count: int, rng: random.Random) -> str:
    chinese = index % 2 == 0
    sentences = ZH_SENTENCES if chinese else EN_SENTENCES
    # Spread over the years before NOW, however many posts there are.
    span = (NOW - START) // timedelta(minutes=1)
    date = START + timedelta(minutes=span * index // count + rng.randrange(60))
    if index % 100 == 37:
        date = NOW + timedelta(days=30 + index % 300)
    tags = rng.sample(TAGS, 3)
    title = (f"第{index}号新闻：" if chinese else f"Story {index}: ") + rng.choice(sentences)[:30]
    paragraphs = []
    for section in range(3):
        heading = f"第{section + 1}部分" if chinese else f"Part {section + 1}"
        paragraphs.append(f"## {heading}")
        for _ in range(3):
            text = " ".join(rng.choice(sentences) for _ in range(3))
            paragraphs.append(f"{text} [^{section + 1}]")
    references = "\n".join(
        f'[^{n}]: Source {n}. "[Report {index}-{n}](https://news.example.com/{index}/{n})". 2026.'
        for n in (1, 2, 3)
    )
    body = "\n\n".join(paragraphs)
    return (
        "---\n"
        f'title: "{title}"\n'
        f"date: {date.isoformat().replace('+00:00', 'Z')}\n"
        f"draft: {'true' if index % 50 == 11 else 'false'}\n"
        f"tags: [{', '.join(repr(t) for t in tags)}]\n"
        f"categories: [{CATEGORIES[index % len(CATEGORIES)]!r}]\n"
        'author: "AI News Assistant"\n'
        f'summary: "{title}"\n'
        f'source_url: "https://news.example.com/source/{index}"\n'
        "ai_score: 0\n"
        "---\n\n"
        f"<article>\n## **TL;DR**\n\n{rng.choice(sentences)}\n\n{body}\n\n"
        f"## References\n\n{references}\n</article>\n"
    )


CONFIG = """site:
  title: "Benchmark site"
  url: "https://bench.example.org/"
  timezone: "Asia/Shanghai"
  author: {name: "Bench", email: "bench@example.org"}
content:
  dir: "content"
feeds:
  output_dir: "feeds"
  limit: 50
newsletter:
  from: {name: "Bench", email: "digest@example.org"}
  max_posts: 20
"""


def write_corpus(out: Path, count: int) -> Path:
    """Write ``count`` posts under out/content and out/config.yaml; return the config path."""
    rng = random.Random(count)
    content = out / "content"
    for index in range(count):
        folder = content / f"{index // 1000:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{index:06d}_{rng.getrandbits(32):08x}.md"
        (folder / name).write_text(post(index, count, rng), encoding="utf-8")
    config = out / "config.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    return config


if __name__ == "__main__":
    print(write_corpus(Path(sys.argv[1]), int(sys.argv[2])))
