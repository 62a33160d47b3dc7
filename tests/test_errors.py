"""The single user-facing error base: message for the person, detail for the log."""
import ast
import builtins
from pathlib import Path

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


# --- one class defines the message; the rest of rrg_desk derives from it -----------------------
PACKAGE = Path(__file__).resolve().parents[1] / "rrg_desk"
BUILTIN_EXCEPTIONS = {name for name, value in vars(builtins).items()
                      if isinstance(value, type) and issubclass(value, BaseException)}


def _classes() -> dict[str, list[tuple[str, ast.ClassDef]]]:
    """Every class of rrg_desk by name: [(file, node)] (a name may be defined in two files)."""
    found: dict[str, list[tuple[str, ast.ClassDef]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, []).append((str(path.relative_to(PACKAGE.parent)), node))
    return found


def _base_names(node: ast.ClassDef) -> list[str]:
    return [b.id if isinstance(b, ast.Name) else b.attr for b in node.bases if isinstance(b, ast.Name | ast.Attribute)]


def _is_exception(name: str, classes: dict, seen: frozenset = frozenset()) -> bool:
    if name in BUILTIN_EXCEPTIONS:
        return True
    if name in seen or name not in classes:
        return False
    return any(_is_exception(base, classes, seen | {name})
               for _, node in classes[name] for base in _base_names(node))


def _defines_user_message(node: ast.ClassDef) -> bool:
    """A method, property or class attribute named user_message, or `self.user_message = ...`."""
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name == "user_message":
            return True
        targets = item.targets if isinstance(item, ast.Assign) else [item.target] if isinstance(item, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "user_message" for t in targets):
            return True
    return any(isinstance(t, ast.Attribute) and t.attr == "user_message"
               and isinstance(t.value, ast.Name) and t.value.id == "self"
               for sub in ast.walk(node) if isinstance(sub, ast.Assign | ast.AnnAssign)
               for t in (sub.targets if isinstance(sub, ast.Assign) else [sub.target]))


def test_exactly_one_exception_class_defines_the_user_message():
    classes = _classes()
    defining = sorted(f"{file}:{name}" for name, nodes in classes.items() for file, node in nodes
                      if _is_exception(name, classes) and _defines_user_message(node))
    assert defining == ["rrg_desk/errors.py:UserFacingError"]


def test_nothing_asks_an_exception_whether_it_has_a_user_message():
    duck_typed = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr") and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant) and node.args[1].value == "user_message"):
                duck_typed.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert duck_typed == []


def test_the_rule_sees_each_way_of_defining_the_message():
    sources = {
        "class A(ValueError):\n    user_message = 'x'\n": True,
        "class A(Exception):\n    @property\n    def user_message(self):\n        return 'x'\n": True,
        "class A(Exception):\n    def __init__(self, m):\n        self.user_message = m\n": True,
        "class A(Exception):\n    def __init__(self, m):\n        super().__init__(m)\n": False,
    }
    for source, expected in sources.items():
        assert _defines_user_message(ast.parse(source).body[0]) is expected, source


def test_every_former_root_is_a_user_facing_error_with_its_words_kept():
    from rrg_desk.app.session import SessionError, UnreviewedFlagsError
    from rrg_desk.imaging.errors import ImageReadError, UnreadableFileError
    from rrg_desk.imaging.input_check import InputRefusal, WrongModalityError
    from rrg_desk.inference.service import NO_BUNDLE_MESSAGE, NoBundle
    from rrg_desk.pacs.errors import PacsAuthError, PacsError
    from rrg_desk.reports.export.common import ExportError
    from rrg_desk.reports.templates import MacroError
    from rrg_desk.store.errors import ReportSignedError, StoreError

    for cls in (SessionError, ImageReadError, InputRefusal, NoBundle, PacsError, ExportError, MacroError,
                StoreError):
        assert issubclass(cls, UserFacingError), cls
    assert issubclass(MacroError, ValueError)  # callers that catch ValueError still do
    unreadable = UnreadableFileError("study/img.dcm", "not found")
    assert unreadable.user_message == str(unreadable) == (
        "img.dcm: the file does not exist or cannot be read (check the path and permissions). (not found)")
    assert unreadable.detail == "not found" and unreadable.path == Path("study/img.dcm")
    assert ImageReadError().user_message == "The file: The file cannot be opened as a chest X-ray."
    refusal = WrongModalityError("ct.dcm", "Modality CT", reason="the DICOM header says this is a CT image.")
    assert refusal.user_message == str(refusal) == "ct.dcm: the DICOM header says this is a CT image. (Modality CT)"
    assert InputRefusal().user_message == "The image: this does not look like a chest radiograph."
    assert NoBundle().user_message == NO_BUNDLE_MESSAGE and "Settings" in NO_BUNDLE_MESSAGE
    auth = PacsAuthError("Wrong password.", status=401)
    assert auth.user_message == str(auth) == "Wrong password." and auth.status == 401
    signed = ReportSignedError("1.2.3")
    assert signed.user_message.startswith("This report is signed") and signed.study_uid == "1.2.3"
    assert UnreviewedFlagsError([]).user_message == "0 truthfulness flag(s) must be reviewed before signing."
