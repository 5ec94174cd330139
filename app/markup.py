"""Show text a user controls as text: Streamlit renders Markdown in alerts, captions and labels.

Reviewer names, notes, the `?sample=` URL parameter, file names (sample ids), class and
split names from a run all reach elements that parse GitHub-flavoured Markdown, where
`![x](http://host/)` makes the reviewer's browser fetch a URL and `[x](http://host/)`
draws a link. Every such value goes through `escape_markdown` before it is drawn.
"""

from __future__ import annotations

import re
import string

#: Backslash-escaping every ASCII punctuation character is valid CommonMark and shows the
#: character itself; it breaks images, links, `<...>` autolinks, emphasis, code spans,
#: HTML, entities, headings, lists, LaTeX (`$`) and Streamlit's `:color[...]` directives.
_ESCAPES = {ord(ch): "\\" + ch for ch in string.punctuation}
#: Line breaks and other control characters would start new Markdown blocks; show a space.
_CONTROLS = {code: " " for code in (*range(32), 127)}

#: U+2060 WORD JOINER: invisible, and not a character any Markdown rule matches.
WORD_JOINER = "\u2060"
#: GitHub's autolink literals (`http://x`, `www.x`, `a@b.co`) and Streamlit's `:emoji:` and
#: `:material/icon:` shortcodes are found in the text after escapes are resolved, so
#: backslashes cannot stop them; a word joiner after `:` or `@` and before `www.`'s dot can.
_LITERALS = re.compile(r"(?<=:)(?=\S)|(?<=@)|(?<=www)(?=\.)", re.IGNORECASE)


def escape_markdown(value: object) -> str:
    """`value` as Markdown source that renders as exactly its text, drawing nothing else.

    Control characters show as spaces, and a word joiner (`WORD_JOINER`, invisible; it
    stays in copied text) follows every `@` and every `:` not followed by a space and
    sits inside `www.`, so nothing becomes a link, image, emoji or icon.
    """
    text = _LITERALS.sub(WORD_JOINER, str(value).translate(_CONTROLS))
    return text.translate(_ESCAPES)
