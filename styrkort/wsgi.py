import os
import threading

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "styrkort.settings")
application = get_wsgi_application()


def _import_statistics() -> None:
    import scipy.stats  # noqa: F401


# The statistics import scipy on first use, which keeps commands and test workers quick to
# start; a server imports it at once, beside its first requests, so that the first indicator
# page (funnel limits) does not wait 1-2 s for it.
threading.Thread(target=_import_statistics, name="import-scipy", daemon=True).start()
