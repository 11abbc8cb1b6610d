"""A table as LaTeX that compiles with pdflatex + booktabs: pandas' to_latex (escaped), then every non-ASCII
character the tables use (±, the minus sign, †, ‡, ⚠, ...) as its LaTeX command, since pdflatex's default input
encoding stops on them. Must not know about runs or reports."""

import unicodedata

# after escaping: these are inserted as LaTeX, not escaped again
LATEX = {
    "±": r"$\pm$", "−": "$-$", "–": "--", "—": "---", "×": r"$\times$", "≤": r"$\leq$", "≥": r"$\geq$",
    "†": r"\textsuperscript{\dag}", "‡": r"\textsuperscript{\ddag}", "⚠": r"\textbf{(!)}", "…": r"\ldots{}",
    "·": r"$\cdot$", "≈": r"$\approx$", "µ": r"$\mu$", "°": r"$^\circ$",
}


def ascii_latex(text: str) -> str:
    """`text` (already LaTeX-escaped) with every non-ASCII character as LaTeX: the known ones from LATEX, accented
    letters as their base letter, anything else as '?' (never a character pdflatex cannot read)."""
    out = []
    for ch in text:
        if ch.isascii():
            out.append(ch)
        elif ch in LATEX:
            out.append(LATEX[ch])
        else:
            base = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append(base or "?")
    return "".join(out)


def table_latex(frame) -> str:
    """The booktabs table of `frame` (no index), pure ASCII."""
    return ascii_latex(frame.to_latex(index=False, escape=True))
