"""The single user-facing error base: message for the person, detail for the log."""
from rrg_desk.errors import UserFacingError


def test_message_and_detail_are_kept_apart():
    exc = UserFacingError("The study could not be saved.", detail="disk I/O error")
    assert exc.user_message == "The study could not be saved."
    assert exc.detail == "disk I/O error"
    assert "disk I/O error" in str(exc)


def test_subclass_may_build_its_message_from_fields():
    class Refusal(UserFacingError):
        def __init__(self, name: str) -> None:
            self.name = name
            super().__init__()

        @property
        def user_message(self) -> str:
            return f"{self.name}: not a chest radiograph."

    exc = Refusal("knee.dcm")
    assert exc.user_message == "knee.dcm: not a chest radiograph."
    assert str(exc) == "knee.dcm: not a chest radiograph."
    assert isinstance(exc, Exception)
