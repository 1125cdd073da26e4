from django.contrib.auth.models import Group

ROLES = {"risk officer", "compliance officer", "operations", "auditor", "administrator"}


class TestRoles:
    def test_the_five_roles_exist_after_migrate(self, db):
        names = set(Group.objects.filter(name__in=ROLES).values_list("name", flat=True))

        assert names == ROLES

    def test_every_role_has_permissions(self, db):
        empty = {group.name for group in Group.objects.filter(name__in=ROLES) if not group.permissions.exists()}

        assert empty == set()

    def test_the_auditor_role_holds_only_view_permissions(self, db):
        codenames = list(Group.objects.get(name="auditor").permissions.values_list("codename", flat=True))

        assert codenames
        assert [codename for codename in codenames if not codename.startswith("view_")] == []

    def test_an_auditor_can_view_the_operations_log(self, auditor):
        assert auditor.has_perm("backoffice.view_operationslogentry")

    def test_an_auditor_can_change_nothing(self, auditor):
        permissions = auditor.get_all_permissions()

        assert permissions
        assert [p for p in permissions if not p.split(".", 1)[1].startswith("view_")] == []
        assert not auditor.has_perm("backoffice.request_change")

    def test_an_auditor_opens_the_operations_log_in_the_admin_without_a_way_to_change_it(self, login, auditor):
        client = login(auditor)

        response = client.get("/admin/backoffice/operationslogentry/")

        assert response.status_code == 200
        assert not response.context["has_add_permission"]

    def test_a_risk_officer_can_approve_parameter_changes(self, risk_officer):
        assert risk_officer.has_perm("backoffice.approve_parameter_change")

    def test_an_auditor_cannot_approve_parameter_changes(self, auditor):
        assert not auditor.has_perm("backoffice.approve_parameter_change")
