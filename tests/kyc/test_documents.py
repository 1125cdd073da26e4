import pytest

from kyc.documents import Refused, sha256_of, sniff
from tests.kyc.builders import EXE, PDF, PNG

MB = 1024 * 1024


class TestSniff:
    @pytest.mark.parametrize(
        ("name", "head", "expected"),
        [
            ("passport.pdf", PDF, "application/pdf"),
            ("passport.PDF", PDF, "application/pdf"),
            ("selfie.png", PNG, "image/png"),
            ("no-extension", PDF, "application/pdf"),
        ],
    )
    def test_reads_the_type_from_the_content(self, name, head, expected):
        assert sniff(name=name, head=head, size=len(head), max_bytes=MB) == expected

    @pytest.mark.parametrize(
        ("name", "head", "size", "why"),
        [
            ("passport.pdf", EXE, 300, "application/x-msdownload is not an accepted document type"),
            ("passport.pdf", b"\x7fELF" + b"\x00" * 300, 304, "application/x-executable is not an accepted"),
            ("notes.pdf", b"just some text", 14, "unrecognised content is not an accepted"),
            ("passport.pdf", PNG, 300, "named .pdf but its content is image/png"),
            ("passport.pdf", PDF, MB + 1, "the limit is 1,048,576"),
            ("passport.pdf", b"", 0, "empty"),
        ],
    )
    def test_refuses_executables_mismatches_and_oversize_files(self, name, head, size, why):
        with pytest.raises(Refused, match=why):
            sniff(name=name, head=head, size=size, max_bytes=MB)


def test_sha256_covers_every_chunk():
    assert sha256_of([b"ab", b"c"]) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
