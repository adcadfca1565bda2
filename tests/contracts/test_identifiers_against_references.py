"""VIN and USCC validation agree with independent implementations (vininfo, python-stdnum)."""

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from stdnum.cn import uscc as stdnum_uscc
from vininfo import Vin

from contracts.identifiers import USCC_ALPHABET, validate_uscc, vin_check_digit

VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


@settings(max_examples=500)
@given(st.text(alphabet=VIN_CHARS, min_size=17, max_size=17))
def test_vin_check_digit_agrees_with_vininfo(vin: str) -> None:
    reference = Vin(vin)
    assume(getattr(reference.assembler, "uses_sae_checkdigit", True))  # vininfo opts some out
    ours = vin[8] == vin_check_digit(vin)
    assert ours == reference.verify_checksum(check_year=False)


@settings(max_examples=500)
@given(
    st.sampled_from("159"),
    st.sampled_from("123"),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.text(alphabet=USCC_ALPHABET, min_size=10, max_size=10),
)
def test_uscc_validation_agrees_with_python_stdnum(
    a: str, b: str, division: str, rest: str
) -> None:
    candidate = a + b + division + rest
    try:
        validate_uscc(candidate)
        ours = True
    except ValueError:
        ours = False
    assert ours == stdnum_uscc.is_valid(candidate)
