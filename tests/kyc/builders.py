"""Builders for KYC tests: OFAC rows in the real legacy CSV format, uploads, complete dossiers."""

from django.core.files.uploadedfile import SimpleUploadedFile

from backoffice.audit import Actor
from kyc import services
from tests.factories import NOW

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + b"0" * 200
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 200
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


def ofac_row(ent_num, name, *, kind="individual", program="SDGT", remarks="-0- "):
    remarks = remarks if remarks == "-0- " else f'"{remarks}"'
    kind = f'"{kind}"' if kind != "-0-" else "-0- "
    return f'{ent_num},"{name}",{kind},"{program}",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,{remarks}'


def write_ofac(path, rows):
    path.write_bytes(("\r\n".join(rows) + "\r\n\x1a").encode())
    return path


def upload(name="id.pdf", content=PDF):
    return SimpleUploadedFile(name, content)


def actor(user):
    return Actor.staff(user)


def add_document(case, user, document_type, *, named_person="", name="doc.pdf", content=PDF):
    return services.add_document(
        case=case,
        document_type=document_type,
        upload=upload(name, content),
        named_person=named_person,
        actor=actor(user),
        now=NOW,
    )
