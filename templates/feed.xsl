<?xml version="1.0" encoding="UTF-8"?>
<!--
  Shown by a browser that opens an RSS or Atom feed built by feedpub: a readable
  page with a hint to copy the address into a feed reader. Feed readers ignore it.
  Copy this file into your own templates folder to change it.
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    exclude-result-prefixes="atom">
  <xsl:output method="html" version="5.0" encoding="UTF-8" indent="yes"/>

  <xsl:template match="/">
    <xsl:variable name="title" select="rss/channel/title | atom:feed/atom:title"/>
    <xsl:variable name="self" select="(rss/channel/atom:link | atom:feed/atom:link)[@rel='self']/@href"/>
    <xsl:variable name="site" select="rss/channel/link | atom:feed/atom:link[@rel='alternate']/@href"/>
    <html lang="{rss/channel/language | atom:feed/@xml:lang}">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="$title"/> (web feed)</title>
        <style>
          body { font: 16px/1.6 system-ui, -apple-system, "Segoe UI", "PingFang SC", "Noto Sans CJK SC", sans-serif;
                 max-width: 42rem; margin: 2rem auto; padding: 0 1rem; color: #1f2328; background: #fff; }
          .hint { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: .75rem 1rem; }
          .hint code { word-break: break-all; background: #fff; padding: 0 .25rem; }
          h1 { font-size: 1.6rem; margin-bottom: .25rem; }
          .about { color: #59636e; margin-top: 0; }
          article { border-top: 1px solid #d1d9e0; padding: .75rem 0; }
          article h2 { font-size: 1.1rem; margin: 0; }
          time { color: #59636e; font-size: .875rem; }
          a { color: #0969da; }
          @media (prefers-color-scheme: dark) {
            body { color: #e6edf3; background: #0d1117; }
            .hint { background: #3b2e00; border-color: #9e6a03; }
            .hint code { background: #0d1117; }
            .about, time { color: #9198a1; }
            article { border-color: #3d444d; }
            a { color: #4493f8; }
          }
        </style>
      </head>
      <body>
        <p class="hint">
          This is a web feed. To follow it, copy its address into your feed reader:
          <code><xsl:value-of select="$self"/></code>
        </p>
        <h1><xsl:value-of select="$title"/></h1>
        <p class="about">
          <xsl:value-of select="rss/channel/description | atom:feed/atom:subtitle"/>
          · <a href="{$site}">Visit the site</a>
        </p>
        <xsl:apply-templates select="rss/channel/item | atom:feed/atom:entry"/>
      </body>
    </html>
  </xsl:template>

  <xsl:template match="item">
    <article>
      <h2><a href="{link}"><xsl:value-of select="title"/></a></h2>
      <time><xsl:value-of select="pubDate"/></time>
      <p><xsl:value-of select="description"/></p>
    </article>
  </xsl:template>

  <xsl:template match="atom:entry">
    <article>
      <h2><a href="{atom:link[not(@rel) or @rel='alternate']/@href}"><xsl:value-of select="atom:title"/></a></h2>
      <time><xsl:value-of select="substring(atom:published, 1, 10)"/></time>
      <p><xsl:value-of select="atom:summary"/></p>
    </article>
  </xsl:template>
</xsl:stylesheet>
