import pytest

from accounts.models import Customer
from backoffice.assignment import CannotAssign, assign_work, assigned_objects
from backoffice.audit import Actor
from backoffice.models import OperationsLogEntry
from tests.factories import NOW, make_customer, make_staff

PERM = "accounts.view_customer"


class TestAssignWork:
    def test_gives_the_assignee_the_permission_on_that_object_only(self, db, risk_officer):
        analyst = make_staff()
        mine, other = make_customer(), make_customer()

        assign_work(obj=mine, assignee=analyst, permission=PERM, actor=Actor.staff(risk_officer), now=NOW)

        assert analyst.has_perm(PERM, mine)
        assert not analyst.has_perm(PERM, other)
        assert not analyst.has_perm(PERM)
        assert list(assigned_objects(analyst, PERM, Customer.objects.all())) == [mine]

    def test_reassigning_moves_the_work_and_is_logged(self, db, risk_officer):
        first, second = make_staff(username="first"), make_staff(username="second")
        case = make_customer()
        assign_work(obj=case, assignee=first, permission=PERM, actor=Actor.staff(risk_officer), now=NOW)

        assign_work(
            obj=case, assignee=second, permission=PERM, actor=Actor.staff(risk_officer), now=NOW, reason="holiday"
        )

        assert not make_fresh(first).has_perm(PERM, case)
        assert make_fresh(second).has_perm(PERM, case)
        last = OperationsLogEntry.objects.filter(action="work.assign").latest("id")
        assert (last.before, last.after["assignee"], last.reason) == ({"assignees": ["first"]}, "second", "holiday")

    def test_refuses_someone_who_is_not_active_staff(self, db, risk_officer):
        leaver = make_staff()
        leaver.is_active = False
        leaver.save()

        with pytest.raises(CannotAssign):
            assign_work(obj=make_customer(), assignee=leaver, permission=PERM, actor=Actor.staff(risk_officer), now=NOW)


def make_fresh(user):
    return type(user).objects.get(pk=user.pk)
