"""`enqueue`'s lean paths read the defaults of new jobs from the config table without
Settings (core.defaults.StoredDefaults): they must read what Settings reads, broken values
and unknown keys included."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from queuectl.core.defaults import StoredDefaults
from queuectl.core.settings import CONFIG_KEYS, Settings

VALUES = st.one_of(
    st.sampled_from(
        ["0", "3", " 7 ", "1000", "1001", "-1", "2.0", "2.5", "1e3", "inf", "nan", "", "x",
         "300", "0.001", "315360000", "315360001", "1_000", "٣"]
    ),
    st.text(max_size=6),
    st.integers(-5, 2000).map(str),
    st.floats().map(str),
)  # fmt: skip
KEYS = st.sampled_from([*CONFIG_KEYS, "max_retries", "unknown"])


@given(st.dictionaries(KEYS, VALUES, max_size=4))
def test_the_lean_defaults_are_the_settings_defaults(stored: dict[str, str]) -> None:
    lean = StoredDefaults(stored.items())
    full = Settings.from_stored(stored)
    assert (lean.max_retries, lean.job_timeout) == (full.max_retries, full.job_timeout)
    assert type(lean.job_timeout) is type(full.job_timeout)  # 300 and 300.0 store alike


def test_nothing_configured_gives_the_settings_defaults() -> None:
    lean, full = StoredDefaults(), Settings()
    assert (lean.max_retries, lean.job_timeout) == (full.max_retries, full.job_timeout)
