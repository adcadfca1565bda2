import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.identifiers import (
    USCC_ALPHABET,
    uscc_check_char,
    validate_country,
    validate_hs_code,
    validate_unlocode,
    validate_uscc,
    validate_vin,
    vin_check_digit,
    vin_model_years,
)

VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


def test_the_domain_examples_are_valid() -> None:
    assert validate_vin("1M8GDM9AXKP042788") == "1M8GDM9AXKP042788"
    assert validate_uscc("91350100M000100Y43") == "91350100M000100Y43"


def test_vin_with_wrong_check_digit_is_rejected_for_china_built_and_north_american() -> None:
    with pytest.raises(ValueError, match="vin_check_digit"):
        validate_vin("1M8GDM9A1KP042788")
    china = "LSVAU2180N2183294"
    fixed = china[:8] + vin_check_digit(china) + china[9:]
    assert validate_vin(fixed) == fixed
    wrong = fixed[:8] + ("1" if fixed[8] != "1" else "2") + fixed[9:]
    with pytest.raises(ValueError, match="vin_check_digit"):
        validate_vin(wrong)


def test_vin_with_wrong_check_digit_is_accepted_for_other_regions() -> None:
    japanese = "JTDBR32E720123456"  # WMI J: the check digit is only advisory
    assert validate_vin(japanese) == japanese


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "1M8GDM9AXKP04278",
        "1M8GDM9AXKP0427888",
        "IM8GDM9AXKP042788",
        "1M8GDM9AXKP04278O",
        "1M8GDM9AXKQ042788",
    ],
)
def test_vin_shape_is_enforced(bad: str) -> None:
    with pytest.raises(ValueError, match="vin_format"):
        validate_vin(bad)


def test_vin_model_year_code_has_two_readings() -> None:
    assert vin_model_years("1M8GDM9AXKP042788") == (1989, 2019)


@given(st.text(alphabet=VIN_CHARS, min_size=17, max_size=17).map(lambda s: "L" + s[1:]))
def test_any_china_vin_with_its_computed_check_digit_validates(draft: str) -> None:
    vin = draft[:8] + vin_check_digit(draft) + draft[9:]
    assert validate_vin(vin.lower()) == vin


@given(
    st.text(alphabet=USCC_ALPHABET, min_size=2, max_size=2),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.text(alphabet=USCC_ALPHABET, min_size=9, max_size=9),
)
def test_any_uscc_with_its_check_character_validates_and_a_changed_one_does_not(
    head: str, division: str, org: str
) -> None:
    body = head + division + org
    good = body + uscc_check_char(body)
    assert validate_uscc(good) == good
    other = next(c for c in USCC_ALPHABET if c != good[-1])
    with pytest.raises(ValueError, match="uscc_check_character"):
        validate_uscc(body + other)


def test_uscc_positions_3_to_8_must_be_digits() -> None:
    with pytest.raises(ValueError, match="uscc_format"):
        validate_uscc("913501A0M000100Y43")


def test_countries_ports_and_hs_codes() -> None:
    assert validate_country("kz") == "KZ"
    with pytest.raises(ValueError, match="country_code"):
        validate_country("XX")
    assert validate_unlocode("CN SHA") == "CNSHA"
    with pytest.raises(ValueError, match="unlocode"):
        validate_unlocode("CN1HA")
    assert validate_hs_code("8703.80") == "870380"
    with pytest.raises(ValueError, match="hs_code"):
        validate_hs_code("8711")


def test_year_code_is_judged_only_where_it_is_mandatory() -> None:
    from contracts.identifiers import model_year_mismatch, vin_warnings

    assert model_year_mismatch("1M8GDM9AXKP042788", 2018)  # North American: K is 1989/2019
    assert not model_year_mismatch("1M8GDM9AXKP042788", 2019)
    european = "WVWZZZ1JZ3W386752"  # position 10 '3' is a year code; 'Z' would not be
    assert not model_year_mismatch(european, 2010)
    no_year_code = european[:9] + "Z" + european[10:]
    assert not model_year_mismatch(no_year_code, 2003)
    assert "vin_year_code" in vin_warnings(no_year_code)
    assert "vin_year_code" not in vin_warnings(european)
