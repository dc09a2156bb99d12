#!/usr/bin/env python3
"""Writes src/models/encoders/html-entities.json: the HTML entity table that ftfy's unescape_html decodes
(Python's html.entities.html5 names ending in ';', plus the all-caps forms ftfy adds for lower-case names
whose upper-case spelling is not an entity itself), and Python's html module rules for numeric
character references (_invalid_charrefs, _invalid_codepoints). Run: python3 scripts/gen-html-entities.py
"""
import html
import html.entities
import json
import pathlib

entities = {}
for name, char in html.entities.html5.items():
    if name.endswith(";"):
        entities["&" + name] = char
        if name == name.lower():
            upper = "&" + name.upper()
            if html.unescape(upper) == upper:
                entities[upper] = char.upper()

invalid_charrefs = {str(k): v for k, v in html._invalid_charrefs.items()}
invalid_codepoints = sorted(html._invalid_codepoints)
out = pathlib.Path(__file__).resolve().parent.parent / "src/models/encoders/html-entities.json"
out.write_text(json.dumps({"entities": entities, "invalidCharrefs": invalid_charrefs,
                           "invalidCodepoints": invalid_codepoints}, ensure_ascii=True, separators=(",", ":")) + "\n")
print(out, len(entities), "entities")
