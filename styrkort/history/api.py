from datetime import date, datetime

from ninja import Query, Router, Schema
from ninja.pagination import LimitOffsetPagination, paginate

from styrkort.history.views import filter_changes, visible_changes

router = Router()


class ChangeOut(Schema):
    id: int
    at: datetime
    actor: str | None
    action: str
    object_type: str
    object_id: str
    object_repr: str
    before: dict | None
    after: dict | None
    batch: str
    note: str

    @staticmethod
    def resolve_actor(obj):
        return obj.actor.username if obj.actor else None


class ChangeFilter(Schema):
    user: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: date | None = None
    until: date | None = None


@router.get("/changes", response=list[ChangeOut], summary="The change log, newest first")
@paginate(LimitOffsetPagination)
def changes(request, filters: Query[ChangeFilter]):
    params = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in filters.dict().items()}
    return filter_changes(visible_changes(request.auth), params)
