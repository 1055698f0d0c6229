"""The one settings module. Everything that differs between machines comes from the environment.

STYRKORT_DATABASE_URL  database (default: SQLite file under the data directory)
STYRKORT_DATA_DIR      data directory for the database, uploads, Parquet extracts (default: ./var)
STYRKORT_SECRET_KEY    secret key (default: generated once, kept in the data directory)
STYRKORT_DEBUG         "1" for development; off by default
STYRKORT_ALLOWED_HOSTS comma-separated host names (default: localhost,127.0.0.1)
STYRKORT_JOBS          "poller" (default: a thread in the serving process picks up queued jobs),
                       "inline" (run at once, used by tests) or "worker" (a separate
                       `styrkort worker` process does the work)
STYRKORT_CACHE_URL     "redis://…" in production; default is a file cache under the data dir
STYRKORT_SUPPRESSION_THRESHOLD  small-number threshold for disclosure control (default 5)
STYRKORT_COMPUTE_LOCK_TIMEOUT   seconds a computation waits for another one of the same region
                       to end before it gives up (default 3600)
STYRKORT_DEMO_SCALE    volume of the demo's synthetic extracts; 1 (default) is realistic for its
                       ~300,000 listed, e.g. 0.25 for a quicker demo on a slow machine
"""

import os
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("STYRKORT_DATA_DIR", BASE_DIR / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = _env_bool("STYRKORT_DEBUG", False)
SECRET_KEY = os.environ.get("STYRKORT_SECRET_KEY", "")
if not SECRET_KEY:
    # The embedded demo and the tests start with nothing configured: keep a generated key in the
    # data directory. Production sets STYRKORT_SECRET_KEY (docs/operations.md).
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        import secrets

        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    SECRET_KEY = key_file.read_text().strip()

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("STYRKORT_ALLOWED_HOSTS", "localhost,127.0.0.1,testserver").split(",")
    if h.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "django_htmx",
    "styrkort.web",
    "styrkort.accounts",
    "styrkort.history",
    "styrkort.jobs",
    "styrkort.organisation",
    "styrkort.extracts",
    "styrkort.indicators",
    "styrkort.grants",
    # After styrkort.web, whose templates/ninja/swagger.html overrides ninja's: the interactive
    # API docs come from ninja's own static files, never a CDN.
    "ninja",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "styrkort.web.middleware.LanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "styrkort.urls"
WSGI_APPLICATION = "styrkort.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "styrkort.web.context.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("STYRKORT_DATABASE_URL", f"sqlite:///{DATA_DIR / 'styrkort.sqlite3'}"),
        conn_max_age=int(os.environ.get("STYRKORT_DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the page server read while a background job writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
            # A 64 MB page cache (default 2 MB): a full indicator run writes ~300,000 results
            # into a table with ten indexes, whose B-trees then stay in memory.
            "PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }

_cache_url = os.environ.get("STYRKORT_CACHE_URL", "")
if _cache_url.startswith("redis://"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _cache_url,
        }
    }
else:
    # A file cache is shared between the page server and a separate worker process, which the
    # job progress display relies on; no server needed for the embedded default.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "login"

# Login rate limit: five failures lock the username+address pair for 15 minutes.
AXES_FAILURE_LIMIT = int(os.environ.get("STYRKORT_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = 0.25
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

LANGUAGE_CODE = "sv"
LANGUAGES = [("sv", _("Swedish")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "styrkort" / "locale"]
TIME_ZONE = "Europe/Stockholm"
USE_I18N = True
USE_TZ = True
USE_THOUSAND_SEPARATOR = True
FORMAT_MODULE_PATH = ["styrkort.formats"]

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = DATA_DIR / "media"
UPLOAD_DIR = DATA_DIR / "uploads"
EXTRACT_DIR = DATA_DIR / "extracts"
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# Extract uploads are streamed to a private directory under UPLOAD_DIR, never held in memory or
# spooled to /tmp (they hold health data); the handler passes every other upload on.
FILE_UPLOAD_HANDLERS = [
    "styrkort.extracts.uploads.PrivateUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 8 * 3600
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
_secure_default = not DEBUG and not _env_bool("STYRKORT_INSECURE_HTTP", False)
SESSION_COOKIE_SECURE = _env_bool("STYRKORT_SECURE_COOKIES", _secure_default)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = _env_bool("STYRKORT_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = int(os.environ.get("STYRKORT_HSTS_SECONDS", "0"))
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("STYRKORT_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

# Vega compiles chart specifications with `new Function`, hence 'unsafe-eval' for scripts only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", "'unsafe-eval'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
    }
}

STYRKORT_JOBS = os.environ.get("STYRKORT_JOBS", "poller")
STYRKORT_SUPPRESSION_THRESHOLD = int(os.environ.get("STYRKORT_SUPPRESSION_THRESHOLD", "5"))
STYRKORT_DEMO_SCALE = float(os.environ.get("STYRKORT_DEMO_SCALE", "1"))
STYRKORT_COMPUTE_LOCK_TIMEOUT = float(os.environ.get("STYRKORT_COMPUTE_LOCK_TIMEOUT", "3600"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("STYRKORT_LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}, "axes": {"level": "WARNING"}},
}
