"""Turning content files into posts: front matter, Markdown bodies, text rules."""
