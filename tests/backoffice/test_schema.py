from pathlib import Path

from django.core.management import call_command

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


class TestOpenApiSchema:
    def test_the_committed_schema_matches_the_code(self, tmp_path):
        generated = tmp_path / "openapi.yaml"

        call_command("spectacular", "--file", str(generated), "--validate", "--fail-on-warn")

        assert generated.read_text() == COMMITTED.read_text(), "run `make schema` and commit docs/openapi.yaml"

    def test_is_served_with_browsable_docs(self, client):
        schema = client.get("/api/schema/")
        docs = client.get("/api/docs/")

        assert schema.status_code == 200
        assert b"/api/v1/prices" in schema.content
        assert docs.status_code == 200
