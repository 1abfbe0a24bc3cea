from __future__ import annotations

from datetime import timedelta

import pytest

from app.decision.durations import MAX_DURATION, format_seconds, parse_duration


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, timedelta(0)),
        (90, timedelta(seconds=90)),
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("90d", timedelta(days=90)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("2h5s", timedelta(hours=2, seconds=5)),
        ("0s", timedelta(0)),
        ("1h90m", timedelta(hours=2, minutes=30)),
        ("3650d", MAX_DURATION),
        (int(MAX_DURATION.total_seconds()), MAX_DURATION),
    ],
)
def test_valid_durations(value: int | str, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "90",  # a string needs units
        "-5s",
        -1,
        True,
        False,
        1.5,
        "1.5h",
        "30m1h",  # wrong order
        "1h1h",  # repeated unit
        "1h 30m",
        " 15m",
        "15m\n",
        "15M",
        "15min",
        "1w",
        "h",
        "\uff11\uff15m",  # fullwidth digits
        "3651d",
        int(MAX_DURATION.total_seconds()) + 1,
        10**30,
        "9" * 5000 + "s",
        None,
        [],
    ],
)
def test_invalid_durations(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)  # type: ignore[arg-type]


def test_error_message_names_the_value_and_the_form() -> None:
    with pytest.raises(ValueError, match=r"'30m1h'.*d, h, m, s parts in that order"):
        parse_duration("30m1h")


@pytest.mark.parametrize(
    ("td", "seconds"),
    [
        (timedelta(minutes=20), 1200),
        (timedelta(seconds=29, microseconds=999_999), 29),
        (timedelta(0), 0),
        (timedelta(days=2), 172_800),
    ],
)
def test_format_seconds_rounds_down(td: timedelta, seconds: int) -> None:
    assert format_seconds(td) == seconds
