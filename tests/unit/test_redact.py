"""redact() masks a password in each of libpq's three forms, and only the password."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from queuectl.core.redact import redact

# Characters a password may hold in each form, as a user would write it there.
URL_SAFE = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="@/&%#?"),
    min_size=1,
)
KV_CHARACTERS = st.characters(codec="utf-8")
# Without "*", which could meet the mask and spell the password anew.
MESSAGE_CHARACTERS = st.characters(codec="utf-8", exclude_characters="*")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "postgresql://queue:s3cret@db.example:5432/jobs",
            "postgresql://queue:***@db.example:5432/jobs",
        ),
        ("postgres://:s3cret@db/jobs", "postgres://:***@db/jobs"),
        ("postgresql://u:a:b@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u@h/db?password=s3cret", "postgresql://u@h/db?password=***"),
        (
            "postgresql://h/db?user=u&password=s3cret&sslmode=disable",
            "postgresql://h/db?user=u&password=***&sslmode=disable",
        ),
        ("postgresql://h/db?sslpassword=key-pass", "postgresql://h/db?sslpassword=***"),
        ("host=db password=s3cret dbname=jobs", "host=db password=*** dbname=jobs"),
        ("host=db password = s3cret dbname=jobs", "host=db password = *** dbname=jobs"),
        ("host=db password='s3 cret' dbname=jobs", "host=db password=*** dbname=jobs"),
        (r"host=db password='it\'s a secret' port=1", "host=db password=*** port=1"),
        (r"host=db password=s3\ cret port=1", "host=db password=*** port=1"),
        ("host=db password='never closed dbname=jobs", "host=db password=***"),
        # What is not a password stays as it was.
        ("postgresql://queue@db.example:5432/jobs", "postgresql://queue@db.example:5432/jobs"),
        ("postgresql://[::1]:5432/jobs", "postgresql://[::1]:5432/jobs"),
        ("/srv/queue/queuectl.db", "/srv/queue/queuectl.db"),
        ("host=db user=queue dbname=jobs", "host=db user=queue dbname=jobs"),
    ],
)
def test_each_form_is_masked(text: str, shown: str) -> None:
    assert redact(text) == shown
    assert redact(shown) == shown  # masking twice changes nothing more


def test_a_target_inside_a_sentence_keeps_the_sentence() -> None:
    message = "cannot connect to PostgreSQL at postgresql://u@h/x?password=s3cret: refused"
    assert (
        redact(message)
        == "cannot connect to PostgreSQL at postgresql://u@h/x?password=***: refused"
    )
    assert redact("SQLite host=h password=s3cret, schema version 5") == (
        "SQLite host=h password=***, schema version 5"
    )


@pytest.mark.parametrize(
    ("target", "driver_message"),
    [
        ("postgresql://u:se%zzkret@h/db", 'invalid percent-encoded token: "se%zzkret"'),
        ("postgresql://u:sek ret@h/db", 'unexpected spaces found in "sek ret", use %20'),
        ("postgresql://h/db?password=p%40ss%zz", 'invalid percent-encoded token: "p%40ss%zz"'),
        ("host=h password='pass word'", "cannot log in with pass word"),
    ],
)
def test_a_driver_quoting_the_password_alone_is_masked_given_the_target(
    target: str, driver_message: str
) -> None:
    """libpq's errors about a malformed target quote the piece it stumbled on."""
    shown = redact(f"cannot connect to {target}: {driver_message}", target)
    assert "***" in shown
    for piece in ("se%zzkret", "sek ret", "p%40ss%zz", "pass word"):
        assert piece not in shown


def test_a_short_password_is_masked_only_in_place() -> None:
    """Masking every "ab" of a message would garble it."""
    target = "postgresql://u:ab@h/db"
    assert redact(f"at {target}: abandoned", target) == "at postgresql://u:***@h/db: abandoned"


@given(password=URL_SAFE)
def test_url_userinfo_never_shows_the_password(password: str) -> None:
    assert redact(f"postgresql://user:{password}@db:5432/jobs") == (
        "postgresql://user:***@db:5432/jobs"
    )


@given(password=URL_SAFE, before=st.booleans())
def test_url_query_never_shows_the_password(password: str, before: bool) -> None:
    query = (
        f"password={password}&sslmode=disable" if before else f"sslmode=disable&password={password}"
    )
    shown = redact(f"postgresql://db/jobs?{query}")
    assert shown == "postgresql://db/jobs?" + query.replace(f"password={password}", "password=***")


@given(password=st.text(alphabet=KV_CHARACTERS, min_size=1))
def test_key_value_never_shows_the_password(password: str) -> None:
    """Written as libpq reads it: quoted, with ' and \\ escaped."""
    quoted = "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"
    assert redact(f"host=db password={quoted} dbname=jobs") == "host=db password=*** dbname=jobs"


@given(password=st.text(alphabet=MESSAGE_CHARACTERS, min_size=4), form=st.sampled_from(range(3)))
def test_given_the_target_no_message_shows_its_password(password: str, form: int) -> None:
    """Whatever a message quotes of the target, the password is not in it."""
    from urllib.parse import quote

    quoted = "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"
    target = [
        f"postgresql://u:{quote(password, safe='')}@h/db",
        f"postgresql://h/db?password={quote(password, safe='')}",
        f"host=h password={quoted}",
    ][form]
    message = f"at {target}: the server said {password!s} and {target}"
    assert password not in redact(message, target)
