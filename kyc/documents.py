"""What an uploaded file really is. Pure: the decision is taken on the bytes, never on the file name."""

import hashlib
from pathlib import PurePath

import filetype

# Scans and photos of documents; anything else (executables, archives, office files with macros) is refused.
ACCEPTED = {
    "application/pdf": (".pdf",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/png": (".png",),
    "image/webp": (".webp",),
    "image/tiff": (".tif", ".tiff"),
    "image/heic": (".heic",),
}
SNIFF_BYTES = 8192


class Refused(ValueError):
    pass


def sniff(*, name: str, head: bytes, size: int, max_bytes: int) -> str:
    """The content type read from the file's first bytes when the file is acceptable; Refused says why not."""
    if size == 0:
        raise Refused("the file is empty")
    if size > max_bytes:
        raise Refused(f"the file is {size:,} bytes; the limit is {max_bytes:,}")
    kind = filetype.guess(head[:SNIFF_BYTES])
    if kind is None or kind.mime not in ACCEPTED:
        found = kind.mime if kind else "unrecognised content"
        raise Refused(f"{found} is not an accepted document type (PDF or an image)")
    suffix = PurePath(name).suffix.lower()
    if suffix and suffix not in ACCEPTED[kind.mime]:
        raise Refused(f"the file is named {suffix} but its content is {kind.mime}")
    return kind.mime


def sha256_of(chunks) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()
