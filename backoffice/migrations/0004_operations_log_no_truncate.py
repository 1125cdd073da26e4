from django.db import migrations

# TRUNCATE fires no row triggers, so it needs its own. A connection may opt out only by setting
# backoffice.allow_truncate=on, which the test settings do so the test runner can empty tables.
NO_TRUNCATE = """
CREATE FUNCTION backoffice_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('backoffice.allow_truncate', true), '') <> 'on' THEN
        RAISE EXCEPTION 'the operations log is append-only: TRUNCATE refused'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER operations_log_no_truncate
    BEFORE TRUNCATE ON backoffice_operationslogentry
    FOR EACH STATEMENT EXECUTE FUNCTION backoffice_refuse_truncate();
"""
DROP = """
DROP TRIGGER operations_log_no_truncate ON backoffice_operationslogentry;
DROP FUNCTION backoffice_refuse_truncate();
"""


class Migration(migrations.Migration):
    dependencies = [("backoffice", "0003_risk_parameter_defaults")]

    operations = [migrations.RunSQL(NO_TRUNCATE, DROP)]
