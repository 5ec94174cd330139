"""Show text a user controls as text: Streamlit renders Markdown in alerts, captions and labels.

Reviewer names, notes, the `?sample=` URL parameter, file names (sample ids), class and
split names from a run all reach elements that parse GitHub-flavoured Markdown, where
`![x](http://host/)` makes the reviewer's browser fetch a URL and `[x](http://host/)`
draws a link. Every such value goes through `escape_markdown` before it is drawn.
"""

from __future__ import annotations

import string

#: Backslash-escaping every ASCII punctuation character is valid CommonMark and shows the
#: character itself; it also breaks images, links, autolinks (`http://`, `www.`),
#: emphasis, code spans, HTML, entities, headings, lists, LaTeX (`$`) and Streamlit's
#: `:color[...]` directives.
_ESCAPES = {ord(ch): "\\" + ch for ch in string.punctuation}
#: Line breaks and other control characters would start new Markdown blocks; show a space.
_ESCAPES.update({code: " " for code in (*range(32), 127)})


def escape_markdown(value: object) -> str:
    """`value` as Markdown source that renders as exactly its text (control characters as
    spaces), with no image, link, formatting or directive."""
    return str(value).translate(_ESCAPES)
