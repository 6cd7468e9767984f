"""feedpub: RSS, Atom and JSON feeds and email digests from a folder of Markdown posts."""

__version__ = "0.1.0"
