"""The only writers of KYC models: cases and reviews, screening, list loads."""

from kyc.services.cases import (  # noqa: F401
    CaseAlreadyOpen,
    DocumentRefused,
    DossierIncomplete,
    NotAllowed,
    SameReviewer,
    WrongStage,
    add_document,
    assign_case,
    decide_case,
    open_case,
    record_check,
    signature_holds,
    update_dossier,
)
from kyc.services.lists import LoadResult, load_address_lists, load_ofac_list, load_people_list  # noqa: F401
from kyc.services.requirements import propose_requirement  # noqa: F401
from kyc.services.screening import (  # noqa: F401
    HitAlreadyDecided,
    add_high_risk_address,
    decide_hit,
    remove_high_risk_address,
    rescreen_all,
    screen_customer,
)
