from django.db import migrations

APPEND_ONLY = """
CREATE FUNCTION backoffice_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the operations log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER operations_log_append_only
    BEFORE UPDATE OR DELETE ON backoffice_operationslogentry
    FOR EACH ROW EXECUTE FUNCTION backoffice_refuse_change();
"""
DROP_APPEND_ONLY = """
DROP TRIGGER operations_log_append_only ON backoffice_operationslogentry;
DROP FUNCTION backoffice_refuse_change();
"""

# Approvals copy the requester so a CHECK can refuse self-approval; this keeps the copy honest.
FOUR_EYES_FK = """
ALTER TABLE backoffice_changeapproval
    ADD CONSTRAINT change_approval_requester_matches
    FOREIGN KEY (change_request_id, requested_by_id)
    REFERENCES backoffice_changerequest (id, requested_by_id);
"""
DROP_FOUR_EYES_FK = "ALTER TABLE backoffice_changeapproval DROP CONSTRAINT change_approval_requester_matches;"


class Migration(migrations.Migration):
    dependencies = [("backoffice", "0001_initial")]

    operations = [
        migrations.RunSQL(APPEND_ONLY, DROP_APPEND_ONLY),
        migrations.RunSQL(FOUR_EYES_FK, DROP_FOUR_EYES_FK),
    ]
