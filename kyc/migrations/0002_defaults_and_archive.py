"""KYC risk parameters and the default requirements of each level; decisions become append-only.

Requirements follow domain.md §1: individuals level 1–3 (ID document, authenticator app, anti-phishing
code, face match) and the corporate / market-maker (KYB) checklist. Staff change them in the admin.
"""

from datetime import UTC, datetime

from django.db import migrations

BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
SECTION = "KYC and sanctions"

# (key, kind, unit, default, min, max, description)
PARAMETERS = [
    ("kyc.name_match_threshold", "DECIMAL", "score", "88", 50, 100,
     "Name-screening score (0–100, date of birth and country included) at or above which a hit goes to "
     "compliance. Chosen on the screening benchmark (docs/kyc.md)."),
    ("kyc.second_review_min_level", "INTEGER", "level", "2", 1, 4,
     "Individual KYC cases for this level and above need a second review by compliance (corporate and "
     "market-maker cases always do)."),
    ("kyc.review_sla_hours", "INTEGER", "hours", "48", 1, 720,
     "Each review stage should be decided within this time of the case reaching it (industry practice)."),
    ("kyc.document_max_bytes", "INTEGER", "bytes", "10485760", 1024, 104857600,
     "Largest document file accepted into a dossier (industry practice)."),
    ("kyc.min_level_withdrawal", "INTEGER", "level", "1", 0, 3,
     "Verified KYC level a customer needs to withdraw (industry practice)."),
    ("kyc.min_level_trading", "INTEGER", "level", "1", 0, 3,
     "Verified KYC level a customer needs to trade (industry practice)."),
    ("kyc.min_level_margin", "INTEGER", "level", "2", 0, 3,
     "Verified KYC level a customer needs for margin and futures trading (industry practice)."),
]

# (track, level, kind, code, label)
REQUIREMENTS = [
    ("INDIVIDUAL", 1, "FIELD", "name", "Full name"),
    ("INDIVIDUAL", 1, "FIELD", "date_of_birth", "Date of birth"),
    ("INDIVIDUAL", 1, "FIELD", "country", "Nationality"),
    ("INDIVIDUAL", 1, "DOCUMENT", "ID_DOCUMENT", "ID document or passport (OCR checked)"),
    ("INDIVIDUAL", 2, "CHECK", "AUTHENTICATOR", "Authenticator app enrolled"),
    ("INDIVIDUAL", 2, "CHECK", "ANTI_PHISHING_CODE", "Anti-phishing code set"),
    ("INDIVIDUAL", 3, "CHECK", "FACE_MATCH", "Face match against the ID document"),
    ("CORPORATE", 1, "DOCUMENT", "APPLICATION_FORM", "Application form"),
    ("CORPORATE", 1, "FIELD", "email", "E-mail"),
    ("CORPORATE", 1, "FIELD", "name", "Legal name"),
    ("CORPORATE", 1, "FIELD", "country", "Nationality / jurisdiction"),
    ("CORPORATE", 1, "FIELD", "authorised_person", "Authorised person"),
    ("CORPORATE", 1, "FIELD", "contact_details", "Contact details"),
    ("CORPORATE", 1, "DOCUMENT", "ID_ULTIMATE_CONTROLLER", "ID / passport of the ultimate controller"),
    ("CORPORATE", 1, "DOCUMENT", "ID_LARGEST_SHAREHOLDER", "ID / passport of the largest shareholder"),
    ("CORPORATE", 1, "DOCUMENT", "ID_AUTHORISED_PERSON", "ID / passport of the authorised person"),
    ("CORPORATE", 1, "DOCUMENT", "BUSINESS_LICENCE", "Business licence or registry certificate"),
    ("CORPORATE", 1, "FIELD", "registry_link", "Registry look-up link"),
    ("CORPORATE", 1, "DOCUMENT", "LETTER_OF_UNDERTAKING", "Signed and sealed letter of undertaking"),
    ("CORPORATE", 1, "DOCUMENT", "BOARD_RESOLUTION", "Board resolution"),
    ("CORPORATE", 1, "DOCUMENT", "POWER_OF_ATTORNEY", "Power of attorney"),
]

APPEND_ONLY = """
CREATE FUNCTION kyc_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'signed KYC decisions are archived: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER kyc_decision_append_only
    BEFORE UPDATE OR DELETE ON kyc_decision
    FOR EACH ROW EXECUTE FUNCTION kyc_refuse_change();
"""
DROP_APPEND_ONLY = """
DROP TRIGGER kyc_decision_append_only ON kyc_decision;
DROP FUNCTION kyc_refuse_change();
"""


def load(apps, schema_editor):
    Definition = apps.get_model("backoffice", "ParameterDefinition")
    Value = apps.get_model("backoffice", "ParameterValue")
    for key, kind, unit, default, low, high, description in PARAMETERS:
        definition = Definition.objects.create(key=key, section=SECTION, kind=kind, unit=unit, description=description,
                                               scoped=False, min_value=low, max_value=high, choices=[])
        Value.objects.create(definition=definition, scope="", value=default, effective_from=BEGINNING,
                             created_at=BEGINNING)
    Requirement = apps.get_model("kyc", "Requirement")
    Requirement.objects.bulk_create([
        Requirement(track=track, level=level, kind=kind, code=code, label=label, updated_at=BEGINNING)
        for track, level, kind, code, label in REQUIREMENTS
    ])


def unload(apps, schema_editor):
    keys = [row[0] for row in PARAMETERS]
    apps.get_model("backoffice", "ParameterValue").objects.filter(definition_id__in=keys).delete()
    apps.get_model("backoffice", "ParameterDefinition").objects.filter(key__in=keys).delete()
    apps.get_model("kyc", "Requirement").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("kyc", "0001_initial"), ("backoffice", "0003_risk_parameter_defaults")]

    operations = [
        migrations.RunPython(load, unload),
        migrations.RunSQL(APPEND_ONLY, DROP_APPEND_ONLY),
    ]
