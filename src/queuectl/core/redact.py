"""Passwords out of anything printed (SPEC 1): errors, logs, `doctor`, `top`, the dashboard.

libpq reads a password from three places in a target, and each is masked wherever it
appears in a text:

- URL userinfo: `postgresql://user:secret@host/db` -> `postgresql://user:***@host/db`
- the URL's query string: `?password=secret` or `&password=secret` -> `password=***`
- a key=value string: `host=x password=secret` (or `password='a b'`) -> `password=***`

`sslpassword` (the passphrase of a client key) is masked alike. A driver's message about
a malformed target can also quote a piece of it (`invalid percent-encoded token: "..."`),
which no pattern recognises: given the target, redact() masks its passwords verbatim too.
"""

from __future__ import annotations

import re

MASK = "***"
# Passwords shorter than this are masked only where the three forms put them: masking
# every "ab" in a message would garble it, and a two-letter password protects nothing.
MIN_VERBATIM = 4

# libpq ends the userinfo at the first "@" or "/"; the password follows the first ":".
_USERINFO = re.compile(r"(?P<keep>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:@/]*:)(?P<secret>[^\s@/]*)@")
# Where a value ends in running text: at a space, or the end; punctuation just before a
# space is the sentence's ("at URL: reason"). (Given the target, a password that does end
# so is masked whole all the same: redact() masks the targets' passwords verbatim first.)
_END = r"(?=[:,;.]?\s|\Z)"
# In a URL's query string a value ends at the next "&".
_QUERY = re.compile(
    rf"(?P<keep>[?&](?:ssl)?password=)(?P<secret>[^&\s]*?)(?:{_END}|(?=&))", re.IGNORECASE
)
# key=value: spaces may surround "="; a value is quoted ('a b', with \' and \\ escapes,
# masked to the end of the text if the quote is never closed) or runs to the next space.
_KEY_VALUE = re.compile(
    r"(?P<keep>(?<![\w?&.-])(?:ssl)?password\s*=\s*)"
    r"(?P<secret>'(?:\\.|[^'\\])*(?:'|\\?\Z)|(?:\\.|[^\s'\\])(?:\\.|[^\s\\])*?" + _END + ")",
    re.IGNORECASE | re.DOTALL,
)


def redact(text: str, *targets: str) -> str:
    """`text` with every password in it replaced by ***.

    `targets` are the store targets the text may speak of (`--db`, `$QUEUECTL_DB`): their
    passwords are masked wherever they appear, even quoted alone by a driver's message.
    """
    for secret in sorted({s for t in targets for s in passwords(t)}, key=len, reverse=True):
        if len(secret) >= MIN_VERBATIM:
            text = text.replace(secret, MASK)
    text = _USERINFO.sub(rf"\g<keep>{MASK}@", text)
    text = _QUERY.sub(rf"\g<keep>{MASK}", text)
    return _KEY_VALUE.sub(rf"\g<keep>{MASK}", text)


def passwords(target: str) -> set[str]:
    """The passwords a target holds, as written and as libpq decodes them."""
    found: set[str] = set()
    if "://" in target:
        rest = target.partition("://")[2]
        end = min((rest.find(c) for c in "@/" if c in rest), default=-1)
        if end >= 0 and rest[end] == "@" and ":" in rest[:end]:
            found.add(rest[:end].partition(":")[2])
        for pair in rest.partition("?")[2].split("&"):
            key, _, value = pair.partition("=")
            if key.lower() in ("password", "sslpassword"):
                found.add(value)
        found |= {_percent_decoded(secret) for secret in found}
    else:
        for match in _KEY_VALUE.finditer(target):
            value = match["secret"]
            found.add(value)
            found.add(_unquoted(value))
    found.discard("")
    return found


def _percent_decoded(text: str) -> str:
    """`%xx` escapes decoded as libpq does (bytes as UTF-8); a bad escape stays as is."""
    data = bytearray()
    position = 0
    while position < len(text):
        escape = text[position + 1 : position + 3]
        if text[position] == "%" and len(escape) == 2 and _is_hex(escape):
            data.append(int(escape, 16))
            position += 3
        else:
            data += text[position].encode()
            position += 1
    return data.decode(errors="replace")


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _unquoted(value: str) -> str:
    """A key=value value as libpq reads it: quotes removed, backslash escapes resolved."""
    if value.startswith("'"):
        value = value[1:-1] if len(value) > 1 and value.endswith("'") else value[1:]
    return re.sub(r"\\(.)", r"\1", value, flags=re.DOTALL)
