"""The JSON API: one NinjaAPI, one router per module, the same access rules as the pages."""

from django.core.exceptions import PermissionDenied
from ninja import NinjaAPI, Swagger

from styrkort.accounts.api import SessionOrToken
from styrkort.accounts.api import router as accounts_router
from styrkort.extracts.api import router as extracts_router
from styrkort.grants.api import router as grants_router
from styrkort.history.api import router as history_router
from styrkort.indicators.api import router as indicators_router
from styrkort.jobs.api import router as jobs_router
from styrkort.organisation.api import router as organisation_router
from styrkort.organisation.import_api import import_router

api = NinjaAPI(
    title="Styrkort API",
    version="1",
    description=(
        "Steering and follow-up of primary care's work with mental ill-health. "
        "Authenticate with a session cookie (browser) or `Authorization: Bearer <token>` "
        "(scripts; tokens are created on the account page)."
    ),
    auth=SessionOrToken(),
    urls_namespace="api",
    docs_url="/docs",
    # Without deep links an operation's path is plain text, not a link nested in the button
    # that opens the operation (axe: nested-interactive).
    docs=Swagger(settings={"deepLinking": False}),
)


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return api.create_response(request, {"detail": "You may not do this."}, status=403)


api.add_router("/accounts", accounts_router, tags=["accounts"])
api.add_router("/history", history_router, tags=["history"])
api.add_router("/jobs", jobs_router, tags=["jobs"])
api.add_router("/organisation", organisation_router, tags=["organisation"])
api.add_router("/grants", grants_router, tags=["grants"])
api.add_router("/extracts", extracts_router, tags=["extracts"])
api.add_router("/indicators", indicators_router, tags=["indicators"])
api.add_router("/organisation", import_router, tags=["organisation import"])
