"""What goes to logs and dead-letter reasons about an error never carries its values."""

import logging

import pytest
from pydantic import BaseModel, ValidationError

from services.kit.logs import JsonFormatter, safe_error


class Child(BaseModel):
    duf_number: int


def test_an_exception_is_named_and_located_without_its_message() -> None:
    try:
        raise ValueError("duplicate key: duf_number=202612345678")
    except ValueError as exc:
        text = safe_error(exc)
    assert text.startswith("ValueError at ") and "test_safe_errors.py" in text
    assert "202612345678" not in text


def test_a_validation_error_names_field_and_rule_not_the_input() -> None:
    with pytest.raises(ValidationError) as err:
        Child(duf_number="Zahra Testdatter")  # type: ignore[arg-type]
    text = safe_error(err.value)
    assert "duf_number" in text and "Zahra" not in text


def test_log_lines_with_an_exception_carry_no_values() -> None:
    try:
        raise KeyError("Zahra Testdatter")
    except KeyError:
        record = logging.LogRecord("x", logging.WARNING, __file__, 1, "failed", None, None)
        import sys

        record.exc_info = sys.exc_info()
    line = JsonFormatter("intake").format(record)
    assert "KeyError" in line and "Zahra" not in line
