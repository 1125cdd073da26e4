from backoffice.models import ChangeRequest, OperationsLogEntry
from backoffice.parameters import param

PROPOSE = "/admin/backoffice/parameterdefinition/withdrawal.large_hold_hours/propose/"


def change_url(change):
    return f"/admin/backoffice/changerequest/{change.pk}/change/"


class TestParameterChangeInTheAdmin:
    def test_a_proposal_takes_effect_only_after_another_officer_approves_it(
        self, login, risk_officer, second_risk_officer
    ):
        client = login(risk_officer)
        proposed = client.post(PROPOSE, {"value": "36", "reason": "weekend staffing"})
        change = ChangeRequest.objects.get()
        value_while_pending = param("withdrawal.large_hold_hours")

        login(second_risk_officer).post(change_url(change), {"decision": "approve", "reason": "agreed"})

        change.refresh_from_db()
        assert proposed.status_code == 302
        assert value_while_pending == 24
        assert change.status == ChangeRequest.Status.APPLIED
        assert param("withdrawal.large_hold_hours") == 36

    def test_the_requester_cannot_approve_their_own_change(self, login, risk_officer):
        client = login(risk_officer)
        client.post(PROPOSE, {"value": "36", "reason": "r"})
        change = ChangeRequest.objects.get()

        response = client.post(change_url(change), {"decision": "approve"}, follow=True)

        change.refresh_from_db()
        assert change.status == ChangeRequest.Status.PENDING
        assert "cannot approve" in response.content.decode()

    def test_a_bad_value_is_a_form_error_and_nothing_is_requested(self, login, risk_officer):
        response = login(risk_officer).post(PROPOSE, {"value": "forever", "reason": "r"})

        assert response.status_code == 200
        assert "must be a number" in response.content.decode()
        assert not ChangeRequest.objects.exists()

    def test_an_auditor_cannot_request_a_change(self, login, auditor):
        response = login(auditor).post(PROPOSE, {"value": "36", "reason": "r"})

        assert "permission" in response.content.decode()
        assert not ChangeRequest.objects.exists()


class TestOperationsLogInTheAdmin:
    def test_an_auditor_can_search_it_but_not_change_it(self, login, auditor, risk_officer):
        login(risk_officer).post(PROPOSE, {"value": "36", "reason": "needle-reason"})
        client = login(auditor)
        entry = OperationsLogEntry.objects.get(action="change_request.open")

        listing = client.get("/admin/backoffice/operationslogentry/", {"q": "needle-reason"})
        detail = client.get(f"/admin/backoffice/operationslogentry/{entry.pk}/change/")
        delete = client.post(f"/admin/backoffice/operationslogentry/{entry.pk}/delete/", {"post": "yes"})

        assert listing.status_code == 200
        assert "change_request.open" in listing.content.decode()
        assert detail.status_code == 200
        assert delete.status_code == 403
        assert OperationsLogEntry.objects.filter(pk=entry.pk).exists()
